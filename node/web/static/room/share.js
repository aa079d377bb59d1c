// `Copy link` and `Ping` on the room page. Copy link copies the room's URL, or, for a closed
// room whose invite link the viewer may see (host and moderators), the invite link. Ping
// opens a picker of people the viewer follows or who follow them (once joined; for a room on
// another node through this node's /api/remote-rooms/{alias}/ping).

import { get, post } from "../api.js";
import { clear, h } from "../dom.js";

/** Fill SLOT with the share controls for ROOM; called on every redraw, so state lives on
 * the slot and an open picker survives room updates. */
export function drawSharing(slot, room, { joined = false, remote = false } = {}) {
  if (!room || room.unknown || room.status === "ended") {
    clear(slot);
    slot.share = null;
    return;
  }
  if (!slot.share) slot.share = build(slot);
  const share = slot.share;
  share.room = room;
  share.remote = remote;
  // the room's own node adds invitees to a closed room: from here only its local rooms
  share.pingButton.hidden = !joined || room.status !== "live"
    || (remote && room.join_mode === "closed");
  if (share.pingButton.hidden) closePicker(share);
}

function linkFor(room) {
  return room.join_mode === "closed" && room.invite_link ? room.invite_link : room.url;
}

function build(slot) {
  const status = h("p", { class: "hint share-status", role: "status" });
  const picker = h("div", { class: "ping-picker", hidden: true });
  const share = { room: null, remote: false, status, picker, pingButton: null };
  const copyButton = h("button", { type: "button", class: "secondary", dataset: { key: "copy-link" },
    onclick: () => copy(share) }, "Copy link");
  share.pingButton = h("button", { type: "button", class: "secondary", dataset: { key: "ping" },
    "aria-expanded": "false", onclick: () => togglePicker(share) }, "Ping");
  clear(slot, h("div", { class: "row share-row" }, copyButton, share.pingButton), picker, status);
  return share;
}

async function copy(share) {
  const link = linkFor(share.room);
  share.status.textContent = "";
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(link);
  } catch {
    if (!copyByCommand(link)) {
      share.status.textContent = `Copy this link: ${link}`;
      return;
    }
  }
  share.status.textContent = "Link copied";
}

function copyByCommand(text) {
  const area = h("textarea", { class: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  area.remove();
  return ok;
}

function closePicker(share) {
  share.picker.hidden = true;
  share.pingButton.setAttribute("aria-expanded", "false");
}

async function togglePicker(share) {
  if (!share.picker.hidden) {
    closePicker(share);
    return;
  }
  share.picker.hidden = false;
  share.pingButton.setAttribute("aria-expanded", "true");
  clear(share.picker, h("p", { class: "hint" }, "Loading people…"));
  let people = [];
  try {
    people = (await get("/api/me/ping-candidates")).items;
  } catch (error) {
    clear(share.picker, h("p", { class: "hint" }, error.message));
    return;
  }
  if (!people.length) {
    clear(share.picker, h("p", { class: "hint" }, "Follow people to ping them into rooms."));
    return;
  }
  clear(share.picker,
    h("h2", { id: "ping-h", class: "small-heading" }, "Ping someone into this room"),
    h("ul", { class: "ping-list", "aria-labelledby": "ping-h" }, people.map((person) =>
      h("li", {}, h("button", { type: "button", class: "ghost", dataset: { key: `ping-${person.user}` },
        onclick: () => ping(share, person) }, `${person.display_name} (${person.user})`)))));
}

async function ping(share, person) {
  try {
    const base = share.remote ? "/api/remote-rooms" : "/api/rooms";
    await post(`${base}/${encodeURIComponent(share.room.id)}/ping`, { user: person.user });
    share.status.textContent = `Pinged ${person.display_name}`;
    closePicker(share);
    share.pingButton.focus();
  } catch (error) {
    share.status.textContent = error.message;
  }
}
