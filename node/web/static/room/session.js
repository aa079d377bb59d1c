// A live room session: the room socket, the peer connection, the <audio> element that plays
// the room and the room state — everything that must outlive the room page. The player
// (room/player.js) owns the current session; the room view and the player bar attach to it
// and only draw. Leaving (or the room ending, or a removal) ends a session; navigating does not.

import { RoomAudio } from "./audio.js";
import { RoomConnection, Status } from "./connection.js";
import { onStage } from "./state.js";

const AUDIO_STALL_MS = 2000; // a "disconnected" peer connection this long is restarted
const AUDIO_RESTARTS = 5;

/** Statuses after which the session is over: no socket, no audio. */
export const FINISHED = Object.freeze([Status.ENDED, Status.REMOVED, Status.REJECTED, Status.LEFT]);

let sessionsStarted = 0;

/** How many sessions this tab has started (tests check returning to a room starts none). */
export function sessionCount() {
  return sessionsStarted;
}

export class RoomSession {
  /**
   * source: room/source.js; me: my handle; room: the preview the page showed, if any; page:
   * the path of the room's page (the bar's Back to room).
   */
  constructor(source, me, { room = null, page = "/" } = {}) {
    sessionsStarted += 1;
    this.number = sessionsStarted;
    this.source = source;
    this.me = me;
    this.room = room;
    this.page = page;
    this.status = null;
    this.reason = "";
    this.levels = {};
    this.audioState = "";
    this.connection = null;
    this.audio = null;
    this.audioTimer = null;
    this.audioRestarts = 0;
    this.paused = false; // playout paused on this device (Media Session pause)
    this.listeners = new Set();
    // Room features (chat, reactions…) keep what must survive the room page here.
    this.data = {};
    this.element = document.createElement("audio");
    this.element.autoplay = true;
    this.element.className = "visually-hidden room-audio";
    document.body.append(this.element);
  }

  /**
   * listener(kind, ...args) is told of every change: "room" (room, eventMessage?), "status"
   * (status, reason), "speaking" (levels), "audio" (state), "error" (text for the person),
   * "paused" (paused), "reactions" (who reacted with what), "message" (a socket message of
   * a type the session does not handle). Returns the
   * function that stops it.
   */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind, ...args) {
    for (const listener of [...this.listeners]) {
      try {
        listener(kind, ...args);
      } catch (error) {
        console.warn("salon: room session listener failed", error);
      }
    }
  }

  get finished() {
    return FINISHED.includes(this.status);
  }

  get live() {
    return this.status === Status.LIVE;
  }

  /** Open the socket and start audio; call from a click so playback may start. */
  join() {
    if (this.connection) return;
    this.status = Status.CONNECTING;
    this.audio = new RoomAudio((signal) => this.connection.signal(signal), this.element, {
      onState: (state) => {
        this.audioState = state;
        if (this.paused) this.element.pause(); // a restarted connection stays paused
        this.watchAudio(state);
        this.emit("audio", state);
      },
      onMicError: (error) => this.emit("error", `Your microphone is not available (${error.name}). You can still listen.`),
    });
    this.element.play().catch(() => {}); // inside the click: lets audio play when it arrives
    this.connection = new RoomConnection(this.source, this.me, {
      onRoom: (room, message) => {
        this.room = room;
        // a full state carries the current speaking levels: rings show at once on joining
        if (!message) this.levels = room.levels || {};
        if (message && message.event === "muted" && message.user === this.me && this.audio) {
          this.audio.setMicEnabled(!message.muted);
        }
        this.emit("room", room, message);
      },
      onStatus: (status, reason) => this.statusChanged(status, reason),
      onSpeaking: (levels) => { this.levels = levels; this.emit("speaking", levels); },
      onSignal: (signal) => this.audio && this.audio.handle(signal),
      onError: (message) => { if (!/signalling: ice/.test(message)) this.emit("error", message); },
      onReactions: (reactions) => this.emit("reactions", reactions), // chat part's coalesced reactions
      onMessage: (message) => this.emit("message", message),
    });
    this.emit("status", this.status, "");
    this.connection.open();
  }

  /**
   * A peer connection that drops while the room socket is fine (the node restarted, or the
   * path to it changed) is started again: the node has no media session for us any more.
   */
  watchAudio(state) {
    clearTimeout(this.audioTimer);
    if (state === "connected") this.audioRestarts = 0;
    if (state !== "disconnected" && state !== "failed") return;
    if (this.audioRestarts >= AUDIO_RESTARTS) return; // the banner says to leave and join again
    this.audioTimer = setTimeout(() => {
      const pc = this.audio && this.audio.pc;
      if (!pc || this.status !== Status.LIVE || !["disconnected", "failed"].includes(pc.connectionState)) return;
      this.audioRestarts += 1;
      this.audio.start(this.canSpeak());
    }, state === "failed" ? 500 : AUDIO_STALL_MS);
  }

  statusChanged(status, reason) {
    const wasReconnecting = this.status === Status.RECONNECTING;
    this.status = status;
    this.reason = reason;
    if (status === Status.LIVE && this.audio) {
      const pc = this.audio.pc;
      const healthy = pc && ["connected", "connecting", "new"].includes(pc.connectionState);
      if (!pc || (wasReconnecting && !healthy)) this.audio.start(this.canSpeak());
    }
    if (this.finished) {
      this.closeAudio();
      if (status === Status.ENDED && this.room) this.room = { ...this.room, status: "ended" };
    }
    this.emit("status", status, reason);
  }

  canSpeak() {
    const you = this.room && this.room.you;
    return Boolean(you && onStage(you) && !you.muted);
  }

  /** A room command (raise_hand, mute…); rejects with the node's error. */
  command(action, user) {
    if (!this.connection) return Promise.reject(new Error("not connected; try again in a moment"));
    return this.connection.command(action, user);
  }

  /** Leave quietly: tell the node, then close everything. */
  async leave() {
    if (this.connection) await this.connection.leave();
    this.statusChanged(Status.LEFT, "");
  }

  /** Pause or resume what we hear here (the lock screen's pause); the seat stays. */
  setPaused(paused) {
    this.paused = Boolean(paused);
    if (this.paused) this.element.pause();
    else this.element.play().catch(() => {});
    this.emit("paused", this.paused);
  }

  closeAudio() {
    clearTimeout(this.audioTimer);
    if (this.audio) this.audio.close();
    this.audio = null;
    this.levels = {};
  }

  /** Drop the session for good (after it finished, or when the page goes away). */
  dispose() {
    if (this.connection) this.connection.stop();
    this.closeAudio();
    this.element.remove();
    this.listeners.clear();
  }
}
