// "Notify me" on upcoming rooms (here and on other nodes), the host's count, "Add to
// calendar", and your calendar feed link. Small pieces the hallway, room and profile views
// place where they fit.

import { ApiError, api, get, post } from "../api.js";
import { clear, h, plural } from "../dom.js";

/** The rooms you asked to be notified about: local room ids and remote room URLs. */
export async function myRsvps() {
  try {
    const { rooms = [] } = await get("/api/me/rsvps");
    return new Set(rooms);
  } catch {
    return new Set();
  }
}

/** The key an RSVP uses: a local room's id, or a remote room's URI (its hallway card id). */
export function rsvpKey(room) {
  return room.id;
}

/**
 * The `Notify me` / `Don't notify me` toggle (the name says what pressing it does).
 * ON: whether you asked already. CHANGED(on) runs after the node agreed.
 */
export function notifyToggle(key, on, changed) {
  const message = h("span", { class: "form-error", role: "alert" });
  const button = h("button", {
    type: "button",
    class: on ? "secondary notify-toggle" : "primary notify-toggle",
    dataset: { key: "notify" },
    onclick: async () => {
      button.disabled = true;
      message.textContent = "";
      try {
        await post("/api/rsvps", { room: key, notify: !on });
        on = !on;
        button.textContent = on ? "Don't notify me" : "Notify me";
        button.className = on ? "secondary notify-toggle" : "primary notify-toggle";
        if (changed) changed(on);
      } catch (error) {
        message.textContent = error instanceof ApiError ? error.message : String(error);
      }
      button.disabled = false;
    },
  }, on ? "Don't notify me" : "Notify me");
  return h("span", { class: "rsvp" }, button, message);
}

/** The room's .ics on the room's own node (remote rooms: that node's link). */
export function calendarHref(room) {
  if (!room.remote) return `/rooms/${encodeURIComponent(room.id)}.ics`;
  return `${String(room.url || room.id).replace(/\/$/, "")}.ics`;
}

export function calendarLink(room) {
  return h("a", { href: calendarHref(room), class: "button secondary", download: "", dataset: { key: "ics" } },
    "Add to calendar");
}

/** What the host and moderators see: how many asked (local and remote people). */
export function rsvpCount(room) {
  if (typeof room.rsvp_count !== "number") return null;
  return h("p", { class: "rsvp-count", role: "status" },
    `${plural(room.rsvp_count, "person", "people")} asked to be notified`);
}

/**
 * The room page's block for an upcoming room: toggle, count and calendar link. Built once
 * per page and updated in place, so a poll never takes focus away from the toggle.
 */
export function rsvpPanel(key, room) {
  const count = h("div", { class: "rsvp-count-slot" });
  const panel = h("div", { class: "rsvp-panel row" });
  const toggleSlot = h("span", {});
  panel.append(toggleSlot, calendarLink(room), count);
  let drawnFor = null;
  async function update(next) {
    clear(count, rsvpCount(next));
    if (drawnFor !== key) {
      drawnFor = key;
      const initial = typeof next.you_rsvped === "boolean" ? next.you_rsvped : (await myRsvps()).has(key);
      clear(toggleSlot, notifyToggle(key, initial));
    }
  }
  update(room);
  return { element: panel, update };
}

/** Your own profile: the private calendar feed URL (made on demand; a new one retires the old). */
export function calendarFeedSection() {
  const out = h("div", { class: "calendar-feed-body" });
  const note = h("p", { class: "hint" },
    "Subscribe to this link in your calendar app to see the rooms you asked to be notified about and the rooms you host. Anyone with the link can read it.");
  const status = h("p", { role: "status", class: "muted" });

  function showUrl(url) {
    const input = h("input", { type: "text", readOnly: true, value: url, "aria-label": "Calendar feed link" });
    clear(out, h("div", { class: "row" }, input,
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          await navigator.clipboard.writeText(url);
          status.textContent = "Copied.";
        } catch {
          input.select();
          status.textContent = "Press Ctrl+C to copy.";
        }
      } }, "Copy calendar link")), status);
  }

  async function make() {
    try {
      const made = await post("/api/me/calendar");
      showUrl(made.url);
    } catch (error) {
      status.textContent = error.message;
    }
  }

  async function load() {
    let active = false;
    try { active = (await get("/api/me/calendar")).active; } catch { active = false; }
    clear(out,
      active ? h("p", { class: "muted" }, "Your calendar link is active. Making a new one stops the old one.") : null,
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", onclick: make },
          active ? "New calendar link" : "Create calendar link"),
        active ? h("button", { type: "button", class: "secondary", onclick: async () => {
          await api("DELETE", "/api/me/calendar");
          load();
        } }, "Turn off calendar link") : null),
      status);
  }

  load();
  return h("section", { class: "calendar-feed", "aria-labelledby": "calendar-feed-h" },
    h("h2", { id: "calendar-feed-h" }, "Calendar"), note, out);
}
