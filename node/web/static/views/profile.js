// A person's profile: who they are, counts, their live room, Follow/Unfollow, and for
// yourself the form to edit your display name and bio.

import { ApiError, api, get, userPath } from "../api.js";
import { avatar, clear, field, h, nodeOf, plural } from "../dom.js";
import { handleOf } from "../room/source.js";
import { roomHref } from "./hallway.js";
import { openReportDialog } from "./report.js";
import { calendarFeedSection } from "./rsvp.js";

const PENDING_POLL_MS = 2000;

export function profileView(root, app, [rawHandle]) {
  const handle = rawHandle.replace(/^@/, "");
  document.title = `@${handle} · ${app.instance.name}`;
  const body = h("div", { class: "profile" }, h("p", { class: "muted", role: "status" }, "Loading…"));
  root.append(body);
  let stopped = false;
  let timer = null;
  let shown = "";

  async function load() {
    clearTimeout(timer);
    try {
      const [profile, hallway] = await Promise.all([
        // Remote people (bob@host) are looked up through our node (WebFinger when unknown).
        handle.includes("@") ? get(`/api/lookup?acct=${encodeURIComponent("@" + handle)}`) : get(userPath(handle)),
        get("/api/hallway").catch(() => ({ rooms: [] })),
      ]);
      if (stopped) return;
      const text = JSON.stringify([profile, hallway.rooms]);
      if (text === shown) {
        timer = setTimeout(load, PENDING_POLL_MS); // still pending: unchanged, so no redraw
        return;
      }
      shown = text;
      draw(profile, hallway.rooms || []);
    } catch (error) {
      clearTimeout(timer);
      if (stopped) return;
      clear(body, h("h1", {}, `@${handle}`),
        h("p", { role: "alert" }, error.status === 404 ? "There is no one by that name." : error.message));
    }
  }

  function draw(profile, rooms) {
    const name = profile.display_name || profile.username;
    const who = profile.handle || profile.username;
    const isMe = app.me && who === app.me.handle;
    const liveRoom = rooms.find((r) => r.status === "live"
      && (r.host === who || (r.speakers || []).some((s) => handleOf(s.user) === who)));
    document.title = `${name} (@${who}) · ${app.instance.name}`;
    clear(body,
      h("header", { class: "profile-head" },
        avatar(name, "large"),
        h("div", { class: "profile-id" },
          h("h1", {}, name),
          h("p", { class: "handle" }, `@${who}`, who.includes("@") ? "" : `@${location.host}`),
          profile.locked ? h("p", { class: "muted" }, "Approves followers by hand") : null),
        isMe ? null : followButton(profile, draw, rooms),
        isMe || !app.me ? null : moreMenu(profile, draw, rooms)),
      profile.bio ? h("p", { class: "bio" }, profile.bio) : null,
      h("p", { class: "counts" },
        h("span", {}, h("strong", {}, String(profile.followers_count ?? 0)), " ",
          profile.followers_count === 1 ? "follower" : "followers"),
        h("span", {}, h("strong", {}, String(profile.following_count ?? 0)), " following"),
        profile.follows_you ? h("span", { class: "badge" }, "Follows you") : null),
      liveRoom
        ? h("section", { class: "live-now", "aria-labelledby": "live-now-h" },
          h("h2", { id: "live-now-h" }, h("span", { class: "badge live" }, "Live"), " now"),
          h("p", {}, h("a", { href: roomHref(liveRoom) }, liveRoom.title), " · ",
            plural(liveRoom.listener_count || 0, "listener", "listeners")))
        : null,
      isMe ? warningsSection() : null,
      isMe ? editForm(profile, app, (updated) => draw(updated, rooms)) : null,
      isMe ? calendarFeedSection() : null,
      isMe ? h("p", { class: "sign-out" }, h("button", { type: "button", class: "secondary", onclick: app.signOut },
        "Sign out")) : null,
      nodeOf(who, "") ? h("p", { class: "muted small" }, `This account lives on ${nodeOf(who, "")}.`) : null);
    // A follow request is answered elsewhere (their node, or by hand): look again while waiting.
    clearTimeout(timer);
    if (!stopped && profile.followed_by_you === "pending") timer = setTimeout(load, PENDING_POLL_MS);
  }

  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function followButton(profile, redraw, rooms) {
  const who = profile.handle || profile.username;
  const state = profile.followed_by_you || null;
  const label = state === "accepted" ? "Unfollow" : state === "pending" ? "Requested" : "Follow";
  const message = h("p", { class: "form-error", role: "alert" });
  const button = h("button", {
    type: "button",
    class: state ? "secondary" : "primary",
    "aria-pressed": state === "pending" ? "true" : null,
    onclick: async () => {
      button.disabled = true;
      message.textContent = "";
      try {
        const result = await api(state ? "DELETE" : "POST", `${userPath(who)}/follow`);
        redraw(result.user, rooms);
      } catch (error) {
        button.disabled = false;
        message.textContent = error instanceof ApiError ? error.message : String(error);
      }
    },
  }, label);
  return h("div", { class: "follow" }, button,
    state === "pending" ? h("p", { class: "hint" }, "Waiting for approval. Press to cancel.") : null, message);
}

/** Block / Mute (and their undo) in a small menu: they are rarer than Follow. */
/** Warnings the node's moderators sent you (filled in when they arrive; empty: hidden). */
function warningsSection() {
  const list = h("ul", { class: "warnings" });
  const section = h("section", { class: "warnings-box", "aria-labelledby": "warnings-h", hidden: true },
    h("h2", { id: "warnings-h" }, "Notes from the moderators"), list);
  get("/api/me/warnings").then((body) => {
    for (const warning of body.warnings || []) {
      const when = new Date(warning.created_at * 1000).toLocaleDateString();
      list.append(h("li", {}, h("p", {}, warning.note), h("p", { class: "muted small" }, when)));
    }
    section.hidden = !list.children.length;
  }).catch(() => {});
  return section;
}

function moreMenu(profile, redraw, rooms) {
  const who = profile.handle || profile.username;
  const message = h("p", { class: "form-error", role: "alert" });
  const item = (label, method, path) => h("button", {
    type: "button", role: "menuitem", class: "secondary small",
    onclick: async () => {
      message.textContent = "";
      try {
        const result = await api(method, `${userPath(who)}/${path}`);
        redraw(result.user, rooms);
      } catch (error) {
        message.textContent = error instanceof ApiError ? error.message : String(error);
      }
    },
  }, label);
  const menu = h("div", { class: "more-menu", role: "menu", id: "profile-more", "aria-label": "More actions", hidden: true },
    profile.blocked_by_you ? item("Unblock", "DELETE", "block") : item("Block", "POST", "block"),
    profile.muted_by_you ? item("Unmute", "DELETE", "mute") : item("Mute", "POST", "mute"),
    h("button", {
      type: "button", role: "menuitem", class: "secondary small",
      onclick: () => {
        menu.hidden = true;
        toggle.setAttribute("aria-expanded", "false");
        openReportDialog(who, `@${who}`, who.includes("@"), toggle);
      },
    }, "Report"));
  const toggle = h("button", {
    type: "button", class: "secondary", "aria-haspopup": "menu", "aria-expanded": "false",
    "aria-controls": "profile-more",
    onclick: () => {
      menu.hidden = !menu.hidden;
      toggle.setAttribute("aria-expanded", menu.hidden ? "false" : "true");
      if (!menu.hidden) menu.querySelector("[role=menuitem]").focus();
    },
  }, "More actions");
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { menu.hidden = true; toggle.setAttribute("aria-expanded", "false"); toggle.focus(); }
  });
  return h("div", { class: "more" }, toggle, menu,
    profile.blocked_by_you ? h("p", { class: "hint" }, "Blocked: they cannot follow you or join your rooms.") : null,
    profile.muted_by_you ? h("p", { class: "hint" }, "Muted: their rooms are hidden from your hallway.") : null,
    message);
}

function editForm(profile, app, done) {
  const displayName = h("input", { name: "display_name", value: profile.display_name || "", maxlength: 100 });
  const bio = h("textarea", { name: "bio", rows: 3, maxlength: 2000 });
  bio.value = profile.bio || "";
  const status = h("p", { class: "hint", role: "status" });
  return h("section", { class: "edit-profile", "aria-labelledby": "edit-h" },
    h("h2", { id: "edit-h" }, "Edit profile"),
    h("form", {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = "Saving…";
        try {
          const updated = await api("PATCH", "/api/me", { display_name: displayName.value, bio: bio.value });
          app.setMe({ ...app.me, ...updated });
          done(updated);
          const form = document.querySelector(".edit-profile");
          form.querySelector("[role=status]").textContent = "Saved.";
          form.querySelector("button[type=submit]").focus();
        } catch (error) {
          status.textContent = error.message;
        }
      },
    }, field("Display name", displayName), field("Bio", bio),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save profile")), status));
}
