// Where a room lives, as far as the client is concerned: the URLs that preview it, admit
// you, carry its WebSocket and refetch its view. A local room is on this node; a remote room
// (on another node) is joined through this node too — `POST /api/remote-rooms` gives a local
// alias, and from then on the WebSocket protocol is exactly the local one.

import { get, post } from "../api.js";
import { nodeOf } from "../dom.js";

const enc = encodeURIComponent;

/** A room on this node, by id. */
export function localRoom(roomId, invite) {
  return {
    remote: false,
    id: roomId,
    invite,
    preview: () => get(`/api/rooms/${enc(roomId)}`),
    admit: () => post(`/api/rooms/${enc(roomId)}/join`, invite ? { invite_token: invite } : undefined),
    socketPath: () => `/api/rooms/${enc(roomId)}/ws${invite ? `?invite=${enc(invite)}` : ""}`,
    viewPath: () => `/api/rooms/${enc(roomId)}`,
    listenersPath: () => `/api/rooms/${enc(roomId)}/listeners`,
    /** Whether a refused admission means the room is over (vs. you may not come in). */
    ended: (error) => error.status === 409 && /ended/.test(error.message),
    /** Whether a refused admission is worth retrying (the room's node is unreachable). */
    transient: () => false,
  };
}

/**
 * A room on another node, by its URL there (`https://a.example/rooms/ID`, an invite link's
 * `?invite=` is taken from it). Admission is re-asked on every (re)connection: it is also
 * what makes this node (re)open its trunk to the room's node.
 */
export function remoteRoom(rawUrl, invite) {
  const parsed = parseRoomUrl(rawUrl);
  const url = parsed ? parsed.url : rawUrl;
  const token = invite || (parsed && parsed.invite) || null;
  const source = {
    remote: true,
    id: null, // the alias our node gives the room, known after the first admission
    url,
    invite: token,
    node: nodeOf(url, ""),
    lastCard: null,
    /** The hallway's card for the room (remote rooms of people you follow), if it has one. */
    async preview() {
      const { rooms = [] } = await get("/api/hallway");
      const card = rooms.find((r) => r.remote && (r.url === url || r.id === url));
      if (card) {
        source.lastCard = card;
        return fromCard(card);
      }
      // A live room whose card left the hallway has ended (or stopped being visible to you).
      if (source.lastCard) return { ...fromCard(source.lastCard), status: "ended" };
      return placeholder(url);
    },
    async admit() {
      const view = await post("/api/remote-rooms", token ? { url, invite_token: token } : { url });
      source.id = view.id;
      return view;
    },
    socketPath: () => `/api/remote-rooms/${enc(source.id)}/ws`,
    viewPath: () => `/api/remote-rooms/${enc(source.id)}`,
    listenersPath: () => `/api/remote-rooms/${enc(source.id)}/listeners`,
    ended: (error) => /ended/.test(error.message),
    transient: (error) => error.status === 409,
  };
  return source;
}

/** `https://a.example/rooms/ID?invite=T` → {url: "https://a.example/rooms/ID", invite: "T"}. */
export function parseRoomUrl(raw) {
  let parsed;
  try { parsed = new URL(String(raw || "").trim()); } catch { return null; }
  if (!/^https?:$/.test(parsed.protocol) || !/\/rooms\/[^/]+\/?$/.test(parsed.pathname)) return null;
  return {
    url: `${parsed.origin}${parsed.pathname.replace(/\/$/, "")}`,
    invite: parsed.searchParams.get("invite"),
    host: parsed.host,
    id: parsed.pathname.replace(/\/$/, "").split("/").pop(),
  };
}

/** The page of this client for a room URL: local rooms by id, others through /remote. */
export function roomPageFor(raw) {
  const parsed = parseRoomUrl(raw);
  if (!parsed) return null;
  const invite = parsed.invite ? `?invite=${enc(parsed.invite)}` : "";
  if (parsed.host === location.host) return `/rooms/${enc(decodeURIComponent(parsed.id))}${invite}`;
  return `/remote?url=${enc(parsed.url)}${parsed.invite ? `&invite=${enc(parsed.invite)}` : ""}`;
}

/** A remote card's speakers are actor URIs (`https://a.example/users/alice`): as handles. */
export function handleOf(user) {
  const text = String(user || "");
  const match = text.match(/^https?:\/\/([^/]+)\/users\/([^/?#]+)$/);
  if (!match) return text;
  const name = decodeURIComponent(match[2]);
  return match[1] === location.host ? name : `${name}@${match[1]}`;
}

export function personLabel(person) {
  return person.display_name || handleOf(person.user);
}

function fromCard(card) {
  return {
    ...card,
    speakers: (card.speakers || []).map((s) => ({
      role: "speaker", muted: false, hand_raised: false, connected: true,
      ...s, user: handleOf(s.user), display_name: personLabel(s),
    })),
    listeners: [],
    hands: [],
    preview_only: true,
  };
}

function placeholder(url) {
  const node = nodeOf(url, "another node");
  return {
    id: url, url, remote: true, node, title: `A room on ${node}`, description: "",
    join_mode: "open", status: "live", host: "", host_display_name: "",
    speakers: [], listeners: [], hands: [], listener_count: 0, preview_only: true, unknown: true,
  };
}
