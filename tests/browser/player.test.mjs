// Unit tests for what the player bar and the lock screen say (node/web/static/room/now-playing.js),
// run by tests/browser/test_browser_state.py with `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  listNames, mediaFields, sameRoom, speakingLine, speakingNow,
} from "../../node/web/static/room/now-playing.js";

const person = (user, role, name) => ({ user, display_name: name || user, role });

const room = (speakers, extra = {}) => ({
  title: "Morning coffee", host: "alice", host_display_name: "Alice Moreau",
  speakers, listeners: [person("dave", "listener")], hands: [], ...extra,
});

test("names are listed in prose, at most three", () => {
  assert.equal(listNames([]), "");
  assert.equal(listNames(["A"]), "A");
  assert.equal(listNames(["A", "B"]), "A and B");
  assert.equal(listNames(["A", "B", "C"]), "A, B and C");
  assert.equal(listNames(["A", "B", "C", "D"]), "A, B, C and 1 other");
  assert.equal(listNames(["A", "B", "C", "D", "E"]), "A, B, C and 2 others");
});

test("who is speaking: stage people above the ring level, in stage order", () => {
  const r = room([person("alice", "host", "Alice Moreau"), person("carol", "speaker", "Carol")]);
  assert.deepEqual(speakingNow(r, { carol: 0.4, alice: 0.3 }).map((p) => p.user), ["alice", "carol"]);
  assert.deepEqual(speakingNow(r, { alice: 0.05, carol: 0.01 }), []);
  // a level for someone not on stage (a stale entry) does not count
  assert.deepEqual(speakingNow(r, { dave: 0.9 }), []);
  assert.equal(speakingLine(r, { carol: 0.4 }), "Speaking: Carol");
  assert.equal(speakingLine(r, {}), "On stage: Alice Moreau and Carol");
  assert.equal(speakingLine(room([]), {}), "Nobody is on stage");
  assert.equal(speakingLine(null, {}), "");
  assert.equal(speakingLine(r, undefined), "On stage: Alice Moreau and Carol");
});

test("lock screen: title, the stage as artist (else the host), the node as album", () => {
  const r = room([person("alice", "host", "Alice Moreau"), person("bob@b.example", "speaker", "Bob")]);
  assert.deepEqual(mediaFields(r, "Salon"), {
    title: "Morning coffee", artist: "Alice Moreau and Bob", album: "Salon",
  });
  assert.deepEqual(mediaFields(room([]), "Salon"), {
    title: "Morning coffee", artist: "Alice Moreau", album: "Salon",
  });
  // a remote room names its own node
  assert.equal(mediaFields(room([], { node: "a.example" }), "Salon").album, "a.example");
  assert.equal(mediaFields({ speakers: [] }, "Salon").title, "Salon room");
});

test("the same room: local by id, remote by URL, invites aside", () => {
  const local = (id, invite) => ({ remote: false, id, invite });
  const remote = (url, id) => ({ remote: true, url, id });
  assert.ok(sameRoom(local("r1"), local("r1", "tok")));
  assert.ok(!sameRoom(local("r1"), local("r2")));
  assert.ok(sameRoom(remote("https://a.example/rooms/x", "alias1"), remote("https://a.example/rooms/x", null)));
  assert.ok(!sameRoom(remote("https://a.example/rooms/x"), remote("https://a.example/rooms/y")));
  assert.ok(!sameRoom(local("r1"), remote("https://a.example/rooms/r1", "r1")));
  assert.ok(!sameRoom(local(null), local(null)));
  assert.ok(!sameRoom(null, local("r1")));
});
