// The room's chat panel: the messages (author, text, clickable http(s) links), a box to
// write, per-message `Delete message` for its author and moderators, and the moderators'
// chat mode buttons. Self-contained: the room view gives it the room and a way to send.
// Everything people typed becomes text nodes or links built here (never innerHTML).

import { h, clear } from "../dom.js";
import { find, isModerator, mayChat } from "./state.js";

const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"»]+$/;
const MAX_CHARS = 500; // the node's default chat_max_chars; it says so if it differs
const MODE_TEXT = {
  on: "",
  speakers: "Only people on stage can chat now.",
  off: "Chat is off.",
};

/** TEXT as text nodes and links (http and https only, opened in a new tab). */
export function linkify(raw) {
  const text = String(raw);
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    let raw = match[0];
    const tail = raw.match(TRAILING);
    if (tail) raw = raw.slice(0, -tail[0].length);
    let url;
    try { url = new URL(raw); } catch { continue; }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, raw));
    last = match.index + raw.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/**
 * The panel. `send(fields)` sends a request on the room socket and resolves on its reply
 * (RoomConnection.request); `me` is the signed-in user's handle as the room names them.
 * Returns { element, update(room, live) }: call update whenever the room changes.
 */
export function chatPanel({ me, send }) {
  const list = h("ol", { class: "chat-list", "aria-label": "Messages" });
  const box = h("textarea", { id: "chat-box", rows: 2, maxlength: MAX_CHARS * 2, class: "chat-box" });
  const status = h("p", { class: "hint chat-status", role: "status", "aria-live": "polite" });
  const modeNote = h("p", { class: "hint chat-mode" });
  // new messages of others, read out politely (the list itself is redrawn, not announced)
  const heard = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const modeButtons = h("div", { class: "row chat-moderation" });
  const sendButton = h("button", { type: "submit", class: "primary small" }, "Send");
  const form = h("form", { class: "chat-form", onsubmit: submit },
    h("label", { for: "chat-box", class: "visually-hidden" }, "Message"), box, sendButton);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  const element = h("section", { class: "chat", role: "region", "aria-labelledby": "chat-h" },
    h("h2", { id: "chat-h" }, "Chat"), modeNote, list, form, status, modeButtons, heard);
  let shown = "";
  let known = null; // ids already on screen (null: nothing drawn yet, the history is not read out)
  let room = null;

  async function submit(event) {
    event.preventDefault();
    const text = box.value.trim();
    if (!text) return;
    sendButton.disabled = true;
    try {
      await send({ type: "chat", text });
      box.value = "";
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    } finally {
      sendButton.disabled = false;
      update(room, true);
    }
  }

  async function request(fields, done) {
    try {
      await send(fields);
      if (done) status.textContent = done;
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function item(message, moderator) {
    const who = typeof message.user === "string" ? message.user : "someone";
    const person = room ? find(room, who) : null;
    const name = (person && person.display_name) || who;
    const mine = message.user === me;
    const at = Number.isFinite(message.at) ? new Date(message.at * 1000) : null;
    return h("li", { class: `chat-message${mine ? " mine" : ""}`, dataset: { id: message.id, author: who } },
      h("span", { class: "chat-author" }, name),
      at && !Number.isNaN(at.getTime()) ? h("time", { class: "chat-time", datetime: at.toISOString() },
        at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })) : null,
      h("p", { class: "chat-text" }, linkify(message.text || "")),
      mine || moderator ? h("button", {
        type: "button", class: "small link-button", dataset: { key: `delete-${message.id}` },
        onclick: () => request({ type: "delete_message", message: message.id }, "Message deleted."),
      }, "Delete message") : null);
  }

  function drawModeration(mode) {
    const button = (label, action) => h("button", {
      type: "button", class: "small secondary", dataset: { key: action },
      onclick: () => request({ type: "command", action }),
    }, label);
    const out = [];
    if (mode !== "on") out.push(button("Chat on", "chat_on"));
    if (mode !== "speakers") out.push(button("Speakers only", "chat_speakers"));
    if (mode !== "off") out.push(button("Chat off", "chat_off"));
    clear(modeButtons, out);
  }

  /** Redraw from ROOM; LIVE: the socket is up (sending is possible). */
  function update(next, live) {
    room = next;
    const chat = (room && room.chat) || { mode: "on", messages: [] };
    const moderator = Boolean(room && isModerator(room.you));
    const key = JSON.stringify([chat.messages.map((m) => m.id), moderator, room && room.speakers.length]);
    if (known) {
      const fresh = chat.messages.filter((m) => !known.has(m.id) && m.user !== me);
      if (fresh.length) {
        const last = fresh[fresh.length - 1];
        const person = room ? find(room, last.user) : null;
        heard.textContent = `${(person && person.display_name) || last.user}: ${last.text}`;
      }
    }
    known = new Set(chat.messages.map((m) => m.id));
    if (key !== shown) {
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      clear(list, chat.messages.map((m) => item(m, moderator)));
      if (!chat.messages.length) list.append(h("li", { class: "muted chat-empty" }, "No messages yet."));
      if (atBottom) list.scrollTop = list.scrollHeight;
      shown = key;
    }
    modeNote.textContent = MODE_TEXT[chat.mode] || "";
    modeNote.hidden = !modeNote.textContent;
    const allowed = live && mayChat(room);
    box.disabled = !allowed;
    sendButton.disabled = !allowed;
    modeButtons.hidden = !moderator || !live;
    if (moderator && live) drawModeration(chat.mode);
    else clear(modeButtons);
  }

  return { element, update };
}
