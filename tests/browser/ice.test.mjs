// Unit tests for the client's ICE server cache (node/web/static/room/ice.js), run by
// tests/browser/test_browser_state.py with `node --test`. fetch and the clock are stubbed.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { forgetIceServers, rtcConfiguration } from "../../node/web/static/room/ice.js";

let now = 1_000_000;
let answers = [];
let requests = 0;
Date.now = () => now;
globalThis.fetch = async (path) => {
  assert.equal(path, "/api/ice-servers");
  requests += 1;
  const next = answers.shift();
  if (next instanceof Error) throw next;
  return new Response(JSON.stringify(next.body), { status: next.status || 200 });
};
console.warn = () => {};

const turn = (user) => ({
  iceServers: [{ urls: ["turn:127.0.0.1:3478?transport=udp"], username: user, credential: "c" }],
  iceTransportPolicy: "relay",
  expires_at: 1800,
  ttl_seconds: 600,
});

beforeEach(() => {
  forgetIceServers();
  requests = 0;
  answers = [];
});

test("reuses credentials for half their lifetime, then fetches fresh ones", async () => {
  answers = [{ body: turn("1:alice") }, { body: turn("2:alice") }];
  const first = await rtcConfiguration();
  assert.deepEqual(first, { iceServers: turn("1:alice").iceServers, iceTransportPolicy: "relay" });
  now += 299_000;
  assert.equal((await rtcConfiguration()).iceServers[0].username, "1:alice");
  assert.equal(requests, 1);
  now += 2_000; // past half of the 600 s lifetime
  assert.equal((await rtcConfiguration()).iceServers[0].username, "2:alice");
  assert.equal(requests, 2);
});

test("no TURN credentials: kept ten minutes", async () => {
  answers = [{ body: { iceServers: [], iceTransportPolicy: "all", expires_at: null, ttl_seconds: null } },
    { body: { iceServers: [], iceTransportPolicy: "all", expires_at: null, ttl_seconds: null } }];
  await rtcConfiguration();
  now += 9 * 60_000;
  await rtcConfiguration();
  assert.equal(requests, 1);
  now += 2 * 60_000;
  await rtcConfiguration();
  assert.equal(requests, 2);
});

test("a failed request falls back to no servers and is not cached", async () => {
  answers = [{ status: 429, body: { error: "too many ICE server requests" } }, new Error("offline"),
    { body: turn("3:alice") }];
  assert.deepEqual(await rtcConfiguration(), { iceServers: [] });
  assert.deepEqual(await rtcConfiguration(), { iceServers: [] });
  assert.equal((await rtcConfiguration()).iceTransportPolicy, "relay");
  assert.equal(requests, 3);
});

test("an unknown policy is treated as all", async () => {
  answers = [{ body: { ...turn("4:alice"), iceTransportPolicy: "bogus" } }];
  assert.equal((await rtcConfiguration()).iceTransportPolicy, "all");
});
