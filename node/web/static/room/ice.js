// ICE servers for the room's peer connection: the node's STUN/TURN servers with TURN
// credentials minted for us (GET /api/ice-servers, docs/api.md "ICE servers"). A
// configuration is reused for half its lifetime, so a new peer connection never starts
// with credentials about to expire; without TURN servers it is kept for ten minutes.

import { get } from "../api.js";

const NO_EXPIRY_MS = 10 * 60 * 1000;
let cached = null; // { configuration, until }

/** An RTCConfiguration ({ iceServers, iceTransportPolicy }) for a new peer connection. */
export async function rtcConfiguration() {
  if (cached && Date.now() < cached.until) return cached.configuration;
  try {
    const data = await get("/api/ice-servers");
    const configuration = {
      iceServers: Array.isArray(data.iceServers) ? data.iceServers : [],
      iceTransportPolicy: data.iceTransportPolicy === "relay" ? "relay" : "all",
    };
    // measured on our own clock: the node's clock may differ from ours
    const lifetime = data.ttl_seconds ? (data.ttl_seconds * 1000) / 2 : NO_EXPIRY_MS;
    cached = { configuration, until: Date.now() + lifetime };
    return configuration;
  } catch (error) {
    // without the node's list we can still reach the node directly (no cache: retry next time)
    console.warn("salon: no ICE servers from the node", error);
    return { iceServers: [] };
  }
}

/** Forget the cached configuration (tests; a signed-out page). */
export function forgetIceServers() {
  cached = null;
}
