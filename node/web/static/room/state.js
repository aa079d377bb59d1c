// The room as the client sees it: the node's view, kept current by applying ordered events.
// Pure functions (no DOM), so they can be tested on their own (tests/browser/test_state.mjs).

const STAGE = new Set(["host", "moderator", "speaker"]);

export function onStage(participant) {
  return Boolean(participant) && STAGE.has(participant.role);
}

export function isModerator(participant) {
  return Boolean(participant) && (participant.role === "host" || participant.role === "moderator");
}

function blank(user, role) {
  return {
    user, display_name: user, role: role || "listener", muted: false, mute_locked: false,
    hand_raised: false, invited_to_speak: false, connected: true,
  };
}

/** A fresh copy of the node's room view, with derived fields filled in for MYSELF. */
export function fromView(view, myself) {
  const room = structuredClone(view);
  room.speakers = room.speakers || [];
  room.listeners = room.listeners || [];
  room.hands = room.hands || [];
  return derive(room, myself);
}

export function find(room, user) {
  return room.speakers.find((p) => p.user === user) || room.listeners.find((p) => p.user === user);
}

function without(room, user) {
  room.speakers = room.speakers.filter((p) => p.user !== user);
  room.listeners = room.listeners.filter((p) => p.user !== user);
  room.hands = room.hands.filter((u) => u !== user);
}

function place(room, participant) {
  (onStage(participant) ? room.speakers : room.listeners).push(participant);
}

function derive(room, myself) {
  // a coalesced room (a large audience) lists only some listeners: its counts come from
  // the node (the view and `audience` messages), not from the lists
  if (!room.coalesced) {
    room.listener_count = room.listeners.length;
    room.participant_count = room.speakers.length + room.listeners.length;
    room.hand_count = room.hands.length;
  }
  room.you = myself ? find(room, myself) || null : null;
  return room;
}

/**
 * Apply one `audience` message (coalesced counts, node/rooms/broadcast.py). Its seq covers
 * the listener events folded into it, so the next event follows it without a gap. Returns
 * {room, resync}: resync when the room stopped being coalesced (the lists are incomplete).
 */
export function applyAudience(current, message, myself) {
  if (message.seq < current.seq) return { room: current, resync: false };
  if (message.coalesced === false) return { room: current, resync: Boolean(current.coalesced) };
  const room = structuredClone(current);
  room.seq = message.seq;
  room.coalesced = true;
  room.participant_count = message.participant_count;
  room.listener_count = message.listener_count;
  room.hand_count = message.hand_count;
  return { room: derive(room, myself), resync: false };
}

/** Apply an `event` or an `audience` message. */
export function applyMessage(current, message, myself) {
  return message.type === "audience"
    ? applyAudience(current, message, myself) : applyEvent(current, message, myself);
}

/**
 * Apply one event message. Returns {room, resync}: resync is true when the event cannot be
 * applied (a gap in seq, or a kind this client does not know) and the full view is needed.
 */
export function applyEvent(current, message, myself) {
  if (message.seq <= current.seq) return { room: current, resync: false };
  if (message.seq !== current.seq + 1) return { room: current, resync: true };
  const room = structuredClone(current);
  room.seq = message.seq;
  const who = message.user;
  const person = who ? find(room, who) : null;
  switch (message.event) {
    case "joined": {
      // events do not carry followed_by_speakers; keep what the last full view said
      const known = person && "followed_by_speakers" in person
        ? { followed_by_speakers: person.followed_by_speakers } : {};
      without(room, who);
      place(room, { ...blank(who, message.role), ...known, ...(message.participant || {}) });
      break;
    }
    case "left":
    case "removed":
      without(room, who);
      break;
    case "disconnected":
    case "reconnected":
      if (person) person.connected = message.event === "reconnected";
      break;
    case "role_changed": {
      if (!person) return { room: current, resync: true };
      // made moderator in a coalesced room: the hands queue was folded for you until now
      if (room.coalesced && who === myself && isModerator({ role: message.role })
        && !isModerator(person)) return { room: current, resync: true };
      const wasOnStage = onStage(person);
      person.role = message.role;
      if (onStage(person)) {
        person.hand_raised = false;
        person.invited_to_speak = false;
        room.hands = room.hands.filter((u) => u !== who);
      } else {
        person.muted = false;
        person.mute_locked = false;
      }
      if (wasOnStage !== onStage(person)) {
        without(room, who);
        place(room, person);
      }
      break;
    }
    case "hand_raised":
      if (person) person.hand_raised = true;
      if (!room.hands.includes(who)) room.hands.push(who);
      break;
    case "hand_lowered":
      if (person) person.hand_raised = false;
      room.hands = room.hands.filter((u) => u !== who);
      break;
    case "invited_to_speak":
      if (person) person.invited_to_speak = true;
      break;
    case "invite_declined":
      if (person) person.invited_to_speak = false;
      break;
    case "muted":
      if (person) {
        person.muted = Boolean(message.muted);
        person.mute_locked = Boolean(message.locked);
      }
      break;
    case "room_updated":
      if (typeof message.title === "string") room.title = message.title;
      if (typeof message.description === "string") room.description = message.description;
      break;
    case "room_started":
      room.status = "live";
      room.started_at = message.started_at ?? room.started_at;
      break;
    case "room_ended":
      room.status = "ended";
      room.ended_at = message.ended_at ?? room.ended_at;
      room.speakers = [];
      room.listeners = [];
      room.hands = [];
      break;
    case "user_invited":
      break;
    case "recording": // issue #14: the host or the node turned recording on or off
      room.recording = Boolean(message.recording);
      break;
    default:
      return { room: current, resync: true };
  }
  return { room: derive(room, myself), resync: false };
}

// ---- chat (node/rooms/chat_service.py): not part of the ordered events --------------------

/** The messages that change the room's chat; reactions are fleeting and kept elsewhere. */
export const CHAT_MESSAGES = new Set(["chat", "chat_deleted", "chat_mode"]);
const CHAT_KEEP = 200; // messages a client keeps (the node sends at most its chat_history)

/**
 * Apply a `chat`, `chat_deleted` or `chat_mode` message to ROOM; a new room object (the
 * old one untouched), or ROOM itself when the message changes nothing.
 */
export function applyChat(current, message) {
  const chat = current.chat || { mode: "on", messages: [] };
  let next;
  switch (message.type) {
    case "chat": {
      const m = message.message;
      if (!m || typeof m.id !== "string" || chat.messages.some((x) => x.id === m.id)) return current;
      next = { ...chat, messages: [...chat.messages, m].slice(-CHAT_KEEP) };
      break;
    }
    case "chat_deleted": {
      const gone = new Set(message.ids || []);
      if (!chat.messages.some((m) => gone.has(m.id))) return current;
      next = { ...chat, messages: chat.messages.filter((m) => !gone.has(m.id)) };
      break;
    }
    case "chat_mode":
      if (chat.mode === message.mode) return current;
      next = { ...chat, mode: message.mode };
      break;
    default:
      return current;
  }
  return { ...current, chat: next };
}

/**
 * The reactions a message carries ({handle: [name, ...]}), or null: a `reactions` message,
 * or an `audience` message of a large room, whose flush carries the reactions since the
 * last one (node/rooms/broadcast.py).
 */
export function reactionsOf(message) {
  if (!message || (message.type !== "reactions" && message.type !== "audience")) return null;
  const reactions = message.reactions;
  if (!reactions || typeof reactions !== "object" || Array.isArray(reactions)) return null;
  return Object.keys(reactions).length ? reactions : null;
}

/** May MYSELF post now? (the node decides; this only greys the box out) */
export function mayChat(room) {
  const mode = room && room.chat ? room.chat.mode : "on";
  if (!room || !room.you || mode === "off") return false;
  return mode === "on" || onStage(room.you);
}
