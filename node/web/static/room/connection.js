// The room WebSocket: admission check, state and ordered events, commands with replies,
// and automatic reconnection with backoff. Joining a room is opening this socket.

import { ApiError, get } from "../api.js";
import { CHAT_MESSAGES, applyChat, applyMessage, find, fromView, onStage } from "./state.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const REFRESH_MS = 300;

function stageOf(room) {
  return room.speakers.map((p) => p.user).sort().join("\n");
}

/** Did this event change who is on stage, or bring someone into the audience? */
function audienceMayRegroup(before, after, message) {
  const joined = message.event === "joined" ? find(after, message.user) : null;
  if (joined && !onStage(joined)) return after.speakers.length > 0;
  return after.listeners.length > 0 && stageOf(before) !== stageOf(after);
}

/** Terminal or transient states the room view shows to the person. */
export const Status = Object.freeze({
  CONNECTING: "connecting",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  ENDED: "ended",
  REMOVED: "removed",
  REJECTED: "rejected",
  LEFT: "left",
});

export class RoomConnection {
  /**
   * handlers: onRoom(room), onStatus(status, reason), onSpeaking(levels), onSignal(signal),
   * onReactions(reactions) (who reacted with what, coalesced by the node),
   * onError(message) for errors the node sends without a command id, onMessage(message) for
   * the other message types.
   * The source says where the room is; only its URLs differ between local and remote rooms.
   */
  constructor(source, myself, handlers) {
    this.source = source; // room/source.js: localRoom(id) or remoteRoom(url)
    this.myself = myself;
    this.handlers = handlers;
    this.everLive = false;
    this.room = null;
    this.ws = null;
    this.status = null;
    this.attempt = 0;
    this.stopped = false;
    this.nextId = 0;
    this.pending = new Map();
    this.resyncing = null;
    this.buffered = [];
    this.timer = null;
    this.refreshTimer = null;
  }

  async open() {
    this.setStatus(Status.CONNECTING);
    await this.connect();
  }

  setStatus(status, reason = "") {
    this.status = status;
    this.handlers.onStatus?.(status, reason);
  }

  async connect() {
    if (this.stopped) return;
    const source = this.source;
    try {
      // The POST tells us why admission fails (the WebSocket handshake cannot). For a remote
      // room it is also what has our node (re)join the room on its node, so it is repeated
      // on every reconnection.
      await source.admit();
    } catch (error) {
      if (this.stopped) return;
      const refused = error instanceof ApiError && error.status >= 400 && error.status < 500;
      if (refused && source.ended(error)) {
        this.finish(Status.ENDED, error.message);
        return;
      }
      // A remote room's node may be unreachable for a while: keep trying once we were in.
      if (refused && !(source.transient(error) && this.everLive)) {
        this.finish(Status.REJECTED, error.message);
        return;
      }
      this.retry();
      return;
    }
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${source.socketPath()}`);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  receive(raw) {
    let message;
    try { message = JSON.parse(raw); } catch { return; }
    switch (message.type) {
      case "state":
        this.attempt = 0;
        this.everLive = true;
        this.room = fromView(message.room, this.myself);
        this.handlers.onRoom?.(this.room);
        this.setStatus(Status.LIVE);
        break;
      case "event":
      case "audience":
        this.event(message);
        break;
      case "speaking":
        this.handlers.onSpeaking?.(message.levels || {});
        break;
      case "signal":
        this.handlers.onSignal?.(message.signal || {});
        break;
      case "chat":
      case "chat_deleted":
      case "chat_mode":
        if (this.room && CHAT_MESSAGES.has(message.type)) {
          const room = applyChat(this.room, message);
          if (room !== this.room) {
            this.room = room;
            this.handlers.onRoom?.(room, message);
          }
        }
        break;
      case "reactions":
        this.handlers.onReactions?.(message.reactions || {});
        break;
      case "reply":
      case "error": {
        const waiting = this.pending.get(message.id);
        if (waiting) {
          this.pending.delete(message.id);
          if (message.type === "reply") waiting.resolve(message);
          else waiting.reject(new Error(message.error || "the node refused"));
        } else if (message.type === "error") {
          this.handlers.onError?.(message.error || "error");
        }
        break;
      }
      default:
        // room features (chat, reactions…) handle their own message types
        this.handlers.onMessage?.(message);
        break;
    }
  }

  event(message) {
    if (!this.room) return;
    if (this.resyncing) {
      this.buffered.push(message);
      return;
    }
    const { room, resync } = applyMessage(this.room, message, this.myself);
    if (resync) {
      this.buffered.push(message);
      this.resync();
      return;
    }
    const before = this.room;
    this.room = room;
    this.handlers.onRoom?.(room, message);
    // a coalesced room's audience is paged (GET …/listeners), never refetched whole
    if (!room.coalesced && audienceMayRegroup(before, room, message)) this.refreshSoon();
  }

  /**
   * Events do not say whom the speakers follow (the room view's followed_by_speakers): when
   * a listener arrives or the stage changes, fetch the view again, once per burst.
   */
  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      if (this.stopped || !this.room) return;
      if (this.resyncing) {
        this.refreshSoon();
        return;
      }
      this.resync();
    }, REFRESH_MS);
  }

  /** Fetch the full view after a gap, then replay what arrived meanwhile. */
  resync() {
    this.resyncing = get(this.source.viewPath())
      .then((view) => {
        let room = fromView(view, this.myself);
        let regroup = false;
        for (const message of this.buffered) {
          if (message.seq <= room.seq) continue;
          const next = applyMessage(room, message, this.myself).room;
          regroup = regroup || (!next.coalesced && message.type === "event"
            && audienceMayRegroup(room, next, message));
          room = next;
        }
        this.room = room;
        this.handlers.onRoom?.(room);
        // events that arrived during the fetch may have changed the audience's groups
        if (regroup) this.refreshSoon();
      })
      .catch(() => {})
      .finally(() => {
        this.resyncing = null;
        this.buffered = [];
      });
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const waiting of this.pending.values()) waiting.reject(new Error("connection closed"));
    this.pending.clear();
    if (this.stopped) return;
    if (event.code === 4003) return this.finish(Status.REMOVED, event.reason || "removed from the room");
    if (event.code === 1000 && /ended/.test(event.reason)) return this.finish(Status.ENDED, event.reason);
    if (event.code === 1000 && /left/.test(event.reason)) return this.finish(Status.LEFT, event.reason);
    if (event.code === 4008) {
      // Too slow: the node dropped us; a new socket brings a fresh full state.
      this.setStatus(Status.RECONNECTING, "catching up");
      this.connect();
      return;
    }
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    this.setStatus(Status.RECONNECTING);
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  finish(status, reason) {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    if (status === Status.ENDED && this.room) this.room = { ...this.room, status: "ended" };
    this.setStatus(status, reason);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Send a room command; resolves on the node's reply, rejects with its error. */
  command(action, user) {
    return this.request(user ? { type: "command", action, user } : { type: "command", action });
  }

  /** Send any request (`chat`, `react`, `delete_message`, `command`) and await its answer. */
  request(fields) {
    const id = ++this.nextId;
    const message = { ...fields, id };
    return new Promise((resolve, reject) => {
      if (!this.send(message)) {
        reject(new Error("not connected; try again in a moment"));
        return;
      }
      this.pending.set(id, { resolve, reject });
    });
  }

  signal(signal) {
    return this.send({ type: "signal", signal });
  }

  /** Leave quietly: tell the node, then stop without reconnecting. */
  async leave() {
    try { await this.command("leave"); } catch { /* closing anyway */ }
    this.stop();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
  }
}
