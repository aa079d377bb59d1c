// The notification centre: the top bar's `Notifications` button with the unread count, the
// live per-user socket (/api/notifications/ws), and the /notifications page.

import { get, post } from "../api.js";
import { formatWhen, h } from "../dom.js";
import { navigate } from "../router.js";

const live = {
  user: null,
  socket: null,
  unread: 0,
  retry: 0,
  timer: null,
  listeners: new Set(),
};

const countText = h("span", { id: "notifications-count", class: "visually-hidden" }, "No unread notifications");
const badge = h("span", { class: "count-badge", "aria-hidden": "true", hidden: true });
const button = h("button", {
  type: "button", class: "ghost notifications-button", "aria-describedby": "notifications-count",
  onclick: () => navigate("/notifications"),
}, "Notifications", badge);

window.salonDebug = window.salonDebug || {};
window.salonDebug.notifications = live;

/** The top bar's button (one element, re-attached whenever the bar is drawn). */
export function notificationsButton() {
  return h("span", { class: "notifications-slot" }, button, countText);
}

/** Start (or stop, for null) the live socket for the signed-in user. */
export function watchNotifications(me) {
  const handle = me ? me.handle : null;
  if (handle === live.user) return;
  live.user = handle;
  if (live.socket) {
    live.socket.onclose = null;
    live.socket.close();
    live.socket = null;
  }
  clearTimeout(live.timer);
  setUnread(0);
  if (handle) connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/notifications/ws`);
  live.socket = socket;
  socket.onopen = () => { live.retry = 0; };
  socket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "unread") setUnread(message.count);
    if (message.type === "notification") {
      setUnread(message.unread);
      for (const listener of live.listeners) listener(message.notification);
    }
  };
  socket.onclose = () => {
    if (live.socket !== socket || !live.user) return;
    live.socket = null;
    const delay = Math.min(30000, 1000 * 2 ** live.retry);
    live.retry += 1;
    live.timer = setTimeout(connect, delay);
  };
}

function setUnread(count) {
  live.unread = Number(count) || 0;
  badge.textContent = live.unread > 99 ? "99+" : String(live.unread);
  badge.hidden = live.unread === 0;
  countText.textContent = live.unread === 0 ? "No unread notifications"
    : `${live.unread} unread notification${live.unread === 1 ? "" : "s"}`;
  button.classList.toggle("has-unread", live.unread > 0);
}

export function describe(note) {
  const who = note.actor || "Someone";
  const title = `“${note.title}”`;
  switch (note.kind) {
    case "room_started": return `${who} started ${title}`;
    case "ping": return `${who} pinged you into ${title}`;
    case "invited_to_speak": return `${note.actor || "A moderator"} invited you to speak in ${title}`;
    case "made_moderator": return `You are now a moderator of ${title}`;
    case "rsvp_starting": return `${title} is starting`;
    case "rsvp_soon": return `${title} starts in 10 minutes`;
    default: return title;
  }
}

export function notificationsView(root) {
  document.title = "Notifications";
  const list = h("ul", { class: "notification-list", "aria-labelledby": "notifications-h" });
  const status = h("p", { class: "hint", role: "status" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show older");
  const markAll = h("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      await post("/api/notifications/read", { all: true });
      for (const li of list.querySelectorAll("li.unread")) markShown(li);
      status.textContent = "All marked as read.";
    } catch (error) {
      status.textContent = error.message;
    }
  } }, "Mark all as read");
  root.append(h("section", { class: "notifications" },
    h("h1", { id: "notifications-h" }, "Notifications"), h("div", { class: "row" }, markAll), status, list, more));
  let before = null;

  function markShown(li) {
    li.classList.remove("unread");
    const mark = li.querySelector("button.mark-read");
    if (mark) mark.remove();
  }

  async function markRead(note, li) {
    if (!li.classList.contains("unread")) return;
    markShown(li);
    try { await post("/api/notifications/read", { ids: [note.id] }); } catch (error) { status.textContent = error.message; }
  }

  function item(note) {
    const li = h("li", { class: note.read ? "notification" : "notification unread", dataset: { id: note.id } });
    li.append(
      h("a", { href: note.link, onclick: () => { markRead(note, li); } }, describe(note)),
      h("span", { class: "muted when" }, ` · ${formatWhen(note.created_at)}`),
      note.read ? null : h("button", { type: "button", class: "ghost mark-read",
        "aria-label": `Mark as read: ${describe(note)}`, onclick: () => markRead(note, li) }, "Mark as read"));
    return li;
  }

  async function load() {
    try {
      const page = await get(`/api/notifications${before ? `?before=${before}` : ""}`);
      for (const note of page.items) list.append(item(note));
      before = page.next_before;
      more.hidden = !before;
      if (!list.children.length) status.textContent = "Nothing yet. When someone you follow starts a room, you will see it here.";
    } catch (error) {
      status.textContent = error.message;
    }
  }
  more.addEventListener("click", load);
  const onNew = (note) => {
    if (list.querySelector(`li[data-id="${note.id}"]`)) return;
    status.textContent = "";
    list.prepend(item(note));
  };
  live.listeners.add(onNew);
  load();
  return () => { live.listeners.delete(onNew); };
}
