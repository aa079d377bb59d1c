// Unit tests for the client's room reducer (node/web/static/room/state.js), run by
// tests/browser/test_browser_state.py with `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyAudience, applyChat, applyEvent, applyMessage, fromView, mayChat, reactionsOf,
} from "../../node/web/static/room/state.js";

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

test("the recording event turns the indicator on and off without a resync", () => {
  let room = fromView({ ...view(), recording: false }, "bob");
  let result = apply(room, { type: "event", seq: 4, event: "recording", recording: true });
  assert.equal(result.resync, false);
  assert.equal(result.room.recording, true);
  result = apply(result.room, { type: "event", seq: 5, event: "recording", recording: false, reason: "quota" });
  assert.equal(result.room.recording, false);
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

// ---- large audiences: `audience` messages (node/rooms/broadcast.py) ----------------------

const largeView = () => ({
  ...view(), coalesced: true, participant_count: 900, listener_count: 899, hand_count: 4,
});

test("a coalesced view keeps the node's counts, not the lists' lengths", () => {
  const room = fromView(largeView(), "bob");
  assert.equal(room.listener_count, 899);
  assert.equal(room.participant_count, 900);
  assert.equal(room.you.user, "bob");
});

test("audience messages set the counts and move seq past folded events", () => {
  let room = fromView(largeView(), "bob");
  const counted = applyMessage(room, {
    type: "audience", seq: 9, coalesced: true, participant_count: 950, listener_count: 949, hand_count: 7,
  }, "bob");
  assert.equal(counted.resync, false);
  room = counted.room;
  assert.equal(room.seq, 9);
  assert.equal(room.listener_count, 949);
  assert.equal(room.hand_count, 7);
  // the next event follows the audience message without a gap
  const next = applyMessage(room, { type: "event", seq: 10, event: "muted", user: "alice", muted: true }, "bob");
  assert.equal(next.resync, false);
  assert.equal(next.room.speakers[0].muted, true);
  assert.equal(next.room.listener_count, 949);
  // a gap after it is still a gap
  assert.equal(applyMessage(room, { type: "event", seq: 12, event: "muted", user: "alice" }, "bob").resync, true);
});

test("an old audience message changes nothing", () => {
  const room = fromView({ ...largeView(), seq: 20 }, "bob");
  const out = applyAudience(room, {
    type: "audience", seq: 5, coalesced: true, participant_count: 1, listener_count: 1, hand_count: 0,
  }, "bob");
  assert.equal(out.room, room);
  assert.equal(out.resync, false);
});

test("a room that stops being coalesced asks for the full view", () => {
  const room = fromView(largeView(), "bob");
  const out = applyAudience(room, {
    type: "audience", seq: 4, coalesced: false, participant_count: 40, listener_count: 39, hand_count: 0,
  }, "bob");
  assert.equal(out.resync, true);
  // a small room that was never coalesced has nothing to resync
  const small = fromView(view(), "bob");
  assert.equal(applyAudience(small, { type: "audience", seq: 4, coalesced: false }, "bob").resync, false);
});

test("made moderator in a coalesced room: resync for the hands queue", () => {
  const room = fromView(largeView(), "bob");
  const out = applyEvent(room, { seq: 4, event: "role_changed", user: "bob", role: "moderator" }, "bob");
  assert.equal(out.resync, true);
  const small = fromView(view(), "bob");
  assert.equal(applyEvent(small, { seq: 4, event: "role_changed", user: "bob", role: "moderator" }, "bob").resync, false);
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

test("reactions come from a reactions message or a large room's audience flush", () => {
  const who = { "bob@b.example": ["clap"] };
  assert.deepEqual(reactionsOf({ type: "reactions", reactions: who }), who);
  const flush = { type: "audience", seq: 3, coalesced: true, participant_count: 60,
    listener_count: 59, hand_count: 0, reactions: who };
  assert.deepEqual(reactionsOf(flush), who);
  assert.equal(reactionsOf({ ...flush, reactions: undefined }), null); // counts only
  assert.equal(reactionsOf({ type: "audience", reactions: [] }), null);
  assert.equal(reactionsOf({ type: "reactions", reactions: {} }), null);
  assert.equal(reactionsOf({ type: "chat", reactions: who }), null);
  // the counts still apply as before
  const room = { ...fromView(view(), "bob"), coalesced: true };
  const { room: next } = applyAudience(room, { ...flush, seq: room.seq + 1 }, "bob");
  assert.equal(next.participant_count, 60);
});
