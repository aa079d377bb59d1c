// Unit tests for the client's room reducer (node/web/static/room/state.js), run by
// tests/browser/test_browser_state.py with `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { applyChat, applyEvent, fromView, mayChat } from "../../node/web/static/room/state.js";

const person = (user, role, extra = {}) => ({
  user, display_name: user, role, muted: false, mute_locked: false, hand_raised: false,
  invited_to_speak: false, connected: true, ...extra,
});

const view = () => ({
  id: "r1", title: "T", description: "", status: "live", seq: 3,
  speakers: [person("alice", "host")], listeners: [person("bob", "listener")], hands: [],
});

const apply = (room, message) => applyEvent(room, message, "bob");

test("fromView derives you and counts", () => {
  const room = fromView(view(), "bob");
  assert.equal(room.you.user, "bob");
  assert.equal(room.listener_count, 1);
  assert.equal(room.participant_count, 2);
});

test("hand, invitation and promotion move bob to the stage", () => {
  let room = fromView(view(), "bob");
  room = apply(room, { seq: 4, event: "hand_raised", user: "bob" }).room;
  assert.deepEqual(room.hands, ["bob"]);
  assert.equal(room.you.hand_raised, true);
  room = apply(room, { seq: 5, event: "invited_to_speak", user: "bob", by: "alice" }).room;
  assert.equal(room.you.invited_to_speak, true);
  room = apply(room, { seq: 6, event: "role_changed", user: "bob", role: "speaker" }).room;
  assert.deepEqual(room.speakers.map((p) => p.user), ["alice", "bob"]);
  assert.equal(room.listeners.length, 0);
  assert.deepEqual(room.hands, []);
  assert.equal(room.you.invited_to_speak, false);
  room = apply(room, { seq: 7, event: "muted", user: "bob", muted: true, locked: true }).room;
  assert.equal(room.you.muted, true);
  assert.equal(room.you.mute_locked, true);
  room = apply(room, { seq: 8, event: "role_changed", user: "bob", role: "listener" }).room;
  assert.equal(room.you.muted, false);
  assert.deepEqual(room.listeners.map((p) => p.user), ["bob"]);
});

test("joined, left and removed keep the lists and counts right", () => {
  let room = fromView(view(), "bob");
  room = apply(room, { seq: 4, event: "joined", user: "carol", role: "listener",
    participant: person("carol", "listener") }).room;
  assert.equal(room.listener_count, 2);
  room = apply(room, { seq: 5, event: "left", user: "carol" }).room;
  assert.equal(room.listener_count, 1);
  room = apply(room, { seq: 6, event: "removed", user: "bob", by: "alice" }).room;
  assert.equal(room.you, null);
});

test("old events are ignored; gaps and unknown kinds ask for a resync", () => {
  const room = fromView(view(), "bob");
  assert.equal(apply(room, { seq: 3, event: "hand_raised", user: "bob" }).room, room);
  assert.equal(apply(room, { seq: 5, event: "hand_raised", user: "bob" }).resync, true);
  assert.equal(apply(room, { seq: 4, event: "something_new" }).resync, true);
  assert.equal(room.you.hand_raised, false, "the input state is never mutated");
});

test("room_ended empties the room", () => {
  const room = apply(fromView(view(), "bob"), { seq: 4, event: "room_ended", ended_at: 1 }).room;
  assert.equal(room.status, "ended");
  assert.equal(room.participant_count, 0);
});

test("followed_by_speakers from the view survives events; newcomers have none yet", () => {
  const v = view();
  v.listeners = [person("bob", "listener", { followed_by_speakers: true })];
  let room = fromView(v, "bob");
  room = apply(room, { seq: 4, event: "joined", user: "carol", role: "listener",
    participant: person("carol", "listener") }).room;
  room = apply(room, { seq: 5, event: "hand_raised", user: "bob" }).room;
  assert.equal(room.you.followed_by_speakers, true);
  assert.equal(room.listeners.find((p) => p.user === "carol").followed_by_speakers, undefined);
  room = apply(room, { seq: 6, event: "joined", user: "bob", role: "listener",
    participant: person("bob", "listener") }).room;
  assert.equal(room.you.followed_by_speakers, true);
});

test("chat messages, deletions and the mode update the room's chat", () => {
  let room = fromView({ ...view(), chat: { mode: "on", messages: [] } }, "bob");
  const msg = (id, user, text) => ({ type: "chat", message: { id, user, text, at: 1 } });
  room = applyChat(room, msg("a", "alice", "hi"));
  const before = room;
  room = applyChat(room, msg("b", "bob", "hello"));
  assert.deepEqual(before.chat.messages.map((m) => m.id), ["a"]); // the old room untouched
  assert.equal(applyChat(room, msg("b", "bob", "again")), room); // a duplicate id: no change
  assert.equal(mayChat(room), true);
  room = applyChat(room, { type: "chat_deleted", ids: ["a", "zzz"] });
  assert.deepEqual(room.chat.messages.map((m) => m.text), ["hello"]);
  room = applyChat(room, { type: "chat_mode", mode: "speakers", by: "alice" });
  assert.equal(room.chat.mode, "speakers");
  assert.equal(mayChat(room), false); // bob listens
  room = applyChat(room, { type: "chat_mode", mode: "off" });
  assert.equal(mayChat(room), false);
  assert.equal(applyChat(room, { type: "reactions", reactions: {} }), room);
});

test("a view without chat still takes chat messages", () => {
  const room = applyChat(fromView(view(), "bob"), { type: "chat", message: { id: "x", user: "a", text: "t" } });
  assert.deepEqual(room.chat, { mode: "on", messages: [{ id: "x", user: "a", text: "t" }] });
});
