// The hallway: live and upcoming rooms, people you follow first (the node ranks them).

import { get } from "../api.js";
import { avatar, clear, formatWhen, h, nodeOf, plural, profileHref } from "../dom.js";
import { personLabel } from "../room/source.js";
import { myRsvps, notifyToggle, rsvpKey } from "./rsvp.js";

const POLL_MS = 3000;

export function hallwayView(root, app) {
  document.title = `Hallway · ${app.instance.name}`;
  const status = h("p", { class: "muted", role: "status" }, "Loading rooms…");
  const live = h("ul", { class: "cards", "aria-labelledby": "live-heading" });
  const upcoming = h("ul", { class: "cards", "aria-labelledby": "upcoming-heading" });
  const liveSection = h("section", { class: "hallway-section" },
    h("h2", { id: "live-heading" }, "Live now"), live);
  const upcomingSection = h("section", { class: "hallway-section" },
    h("h2", { id: "upcoming-heading" }, "Upcoming"), upcoming);
  const replays = h("ul", { class: "cards", "aria-labelledby": "replays-heading" });
  const replaysSection = h("section", { class: "hallway-section", hidden: true },
    h("h2", { id: "replays-heading" }, "Replays"), replays);
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Hallway"),
      h("a", { href: "/new", class: "button primary" }, "Start a room")),
    status, liveSection, upcomingSection, replaysSection);
  let lastReplays = "";

  let last = "";
  let timer = null;
  let stopped = false;

  async function refresh() {
    clearTimeout(timer);
    try {
      const [data, rsvps] = await Promise.all([get("/api/hallway"), myRsvps()]);
      if (stopped) return;
      // remote cards learn "Notify me" from our own list (views/rsvp.js)
      data.rooms = data.rooms.map((r) => ({ ...r, you_rsvped: rsvps.has(rsvpKey(r)) }));
      const text = JSON.stringify(data.rooms);
      if (text !== last) {
        last = text;
        draw(data.rooms);
      }
      const replayText = JSON.stringify(data.replays || []);
      if (replayText !== lastReplays) {
        lastReplays = replayText;
        replays.replaceChildren(...(data.replays || []).map(replayCard));
        replaysSection.hidden = !(data.replays || []).length;
      }
    } catch (error) {
      if (!stopped) status.textContent = `Could not load the hallway: ${error.message}`;
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  function draw(rooms) {
    const liveRooms = rooms.filter((r) => r.status === "live");
    const soon = rooms.filter((r) => r.status === "scheduled");
    status.textContent = rooms.length ? "" : "No rooms right now. Start one, or follow people to see theirs here.";
    keyedCards(live, liveRooms, app, refresh);
    keyedCards(upcoming, soon, app, refresh);
    liveSection.hidden = liveRooms.length === 0;
    upcomingSection.hidden = soon.length === 0;
  }

  const onVisible = () => { if (!document.hidden) refresh(); };
  document.addEventListener("visibilitychange", onVisible);
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}

/** An ended room with a replay: played here, or through our node for a remote one. */
function replayCard(room) {
  const href = room.remote ? room.replay.url : `/rooms/${encodeURIComponent(room.id)}/replay`;
  const minutes = Math.max(1, Math.round((room.replay.duration || 0) / 60));
  return h("li", { class: "card" },
    h("h3", { class: "card-title" }, room.title),
    h("p", { class: "card-meta" }, h("span", {}, room.host || ""), h("span", {}, `${minutes} min`)),
    h("a", { href, class: "button" }, "Replay"));
}

/** Replace only the cards that changed, so focus and scroll stay put while rooms update. */
function keyedCards(list, rooms, app, refresh) {
  const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
  const items = rooms.map((room) => {
    const text = JSON.stringify(room);
    const old = existing.get(room.id);
    if (old && old.dataset.json === text) return old;
    const li = h("li", { dataset: { key: room.id, json: text } }, card(room, app, refresh));
    if (old && old.contains(document.activeElement)) {
      queueMicrotask(() => li.querySelector("a")?.focus());
    }
    return li;
  });
  clear(list, items);
}

/**
 * Where a card leads. Remote rooms (federation cards carry remote: true, the room's URI as
 * id and its URL on its node) open here too, joined through this node (`/remote?url=`).
 */
export function roomHref(room) {
  if (room.remote) return `/remote?url=${encodeURIComponent(room.url || room.id)}`;
  return `/rooms/${encodeURIComponent(room.id)}`;
}

function card(room, app, refresh) {
  const titleId = `room-${room.id}`;
  const node = room.node || nodeOf(room.url, location.host);
  const isLive = room.status === "live";
  const speakers = room.speakers || [];
  const names = speakers.slice(0, 3).map(personLabel);
  const more = (room.participant_count || 0) - (room.listener_count || 0) - names.length;
  const speakerText = names.length
    ? names.join(", ") + (more > 0 ? ` and ${plural(more, "other", "others")}` : "")
    : "Nobody on stage yet";
  return h("article", { class: `card ${isLive ? "is-live" : ""}`, "aria-labelledby": titleId },
    h("p", { class: "card-meta" },
      isLive ? h("span", { class: "badge live" }, "Live")
        : h("span", { class: "badge upcoming" }, "Upcoming"),
      h("span", {}, isLive ? "" : formatWhen(room.start_time)),
      node !== location.host ? h("span", { class: "node" }, node) : h("span", { class: "node" }, app.instance.name)),
    h("h3", { class: "card-title" }, h("a", { href: roomHref(room), id: titleId }, room.title)),
    room.description ? h("p", { class: "card-desc" }, room.description) : null,
    h("div", { class: "card-people" },
      h("span", { class: "avatars", "aria-hidden": "true" },
        speakers.slice(0, 4).map((s) => avatar(personLabel(s), "small"))),
      h("span", { class: "speaker-names" }, speakerText)),
    h("p", { class: "card-foot" },
      h("span", {}, "Hosted by ", h("a", { href: profileHref(room.host) }, room.host_display_name || room.host)),
      isLive ? h("span", { class: "listeners" }, plural(room.listener_count || 0, "listener", "listeners"))
        : notifyToggle(rsvpKey(room), Boolean(room.you_rsvped), refresh)));
}
