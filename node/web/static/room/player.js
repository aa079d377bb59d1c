// The player: the app-level owner of the live room session, so the room keeps playing while
// the person browses the hallway, profiles or search. The room view attaches to the current
// session (or starts one) and detaches on navigation without leaving; the bar
// (views/player-bar.js) shows the session whenever the room page does not. Only `Leave
// quietly`, the room ending, a removal, joining another room, signing out or closing the tab
// end it. Closing (or reloading) the tab sends no leave: the node holds the seat for its
// reconnect grace, so a reload and Join gets the same seat back (a speaker stays on stage).
// It also tells the browser what is playing (Media Session: the lock screen of a phone).

import { Status } from "./connection.js";
import { mediaFields, sameRoom } from "./now-playing.js";
import { RoomSession, sessionCount } from "./session.js";

export class Player {
  /** nodeName() names this node (the lock screen's album); bar draws the bar. */
  constructor({ nodeName, bar }) {
    this.nodeName = nodeName;
    this.bar = bar;
    this.session = null;
    this.attached = null; // the session the room page shows, if it shows one
    this.unsubscribe = null;
    this.mediaKey = "";
    window.salonDebug = window.salonDebug || {};
    Object.assign(window.salonDebug, {
      player: this,
      sessions: () => sessionCount(),
      inbound: () => (this.session && this.session.audio ? this.session.audio.inbound() : Promise.resolve(null)),
    });
    Object.defineProperty(window.salonDebug, "pc", {
      configurable: true,
      get: () => (this.session && this.session.audio ? this.session.audio.pc : null),
    });
  }

  /** The session of the room SOURCE names, if it is the current one (live or just over). */
  current(source) {
    return this.session && sameRoom(this.session.source, source) ? this.session : null;
  }

  /**
   * A new session for SOURCE (call from the Join click; the caller joins it). Being in
   * another room means leaving it first: returns {session, left} with the title left behind.
   */
  start(source, me, room) {
    let left = "";
    const previous = this.session;
    if (previous && !previous.finished) {
      left = (previous.room && previous.room.title) || "the other room";
      previous.leave().finally(() => previous.dispose());
    } else if (previous) {
      previous.dispose();
    }
    this.session = new RoomSession(source, me, { room, page: location.pathname + location.search });
    this.watch(this.session);
    return { session: this.session, left };
  }

  watch(session) {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = session.subscribe((kind, ...args) => {
      if (kind === "status" && session.finished && this.attached !== session) {
        this.announce(finishedText(session));
      }
      if (kind === "room" || kind === "status" || kind === "paused") this.updateMediaSession();
      if (this.attached !== session) this.bar.update(kind, session, ...args);
    });
  }

  /** The room page shows SESSION: no bar. Returns detach(), for when the page goes. */
  attach(session, listener) {
    this.attached = session;
    const stop = session.subscribe(listener);
    this.refresh();
    return () => {
      stop();
      if (this.attached === session) this.attached = null;
      // a session that ended while on its page has nothing left to show elsewhere
      if (session === this.session && session.finished) this.drop();
      this.refresh();
    };
  }

  /** Leave quietly (the bar's button, the lock screen's stop, signing out). */
  async leave() {
    const session = this.session;
    if (!session || session.finished) {
      this.drop();
      return;
    }
    await session.leave(); // the bar announces it (finishedText)
    if (this.session === session) this.drop();
  }

  /** Forget the current session (after it finished, or dismissed from the bar). */
  drop() {
    const session = this.session;
    this.session = null;
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
    if (session) session.dispose();
    this.updateMediaSession();
    this.refresh();
  }

  announce(text) {
    this.bar.announce(text);
  }

  refresh() {
    const shown = this.session && this.attached !== this.session ? this.session : null;
    this.bar.show(shown);
  }

  // ---- Media Session -------------------------------------------------------------------

  updateMediaSession() {
    if (!("mediaSession" in navigator)) return;
    const media = navigator.mediaSession;
    const session = this.session;
    if (!session || session.finished || !session.room) {
      if (this.mediaKey) {
        media.metadata = null;
        media.playbackState = "none";
        for (const action of ["pause", "play", "stop"]) this.setAction(action, null);
        this.mediaKey = "";
      }
      return;
    }
    const fields = mediaFields(session.room, this.nodeName());
    const key = JSON.stringify(fields);
    media.playbackState = session.paused ? "paused" : "playing";
    if (key === this.mediaKey) return;
    this.mediaKey = key;
    if (typeof MediaMetadata === "function") {
      media.metadata = new MediaMetadata({
        ...fields,
        artwork: [{ src: "/static/icon.svg", sizes: "any", type: "image/svg+xml" }],
      });
    }
    this.setAction("pause", () => this.pause(true));
    this.setAction("play", () => this.pause(false));
    this.setAction("stop", () => { this.leave(); });
  }

  /**
   * A live room cannot be paused for later: pause stops playout on this device (the seat
   * stays, the bar says so and offers Resume), play resumes the live audio.
   */
  pause(paused) {
    if (this.session && !this.session.finished) this.session.setPaused(paused);
  }

  setAction(action, handler) {
    try {
      navigator.mediaSession.setActionHandler(action, handler);
    } catch {
      // this browser does not know the action
    }
  }
}

/** What the bar says when the session ended while the room page was not showing. */
export function finishedText(session) {
  const title = (session.room && session.room.title) || "The room";
  if (session.status === Status.ENDED) return `“${title}” ended.`;
  if (session.status === Status.REMOVED) return `You were removed from “${title}”.`;
  if (session.status === Status.REJECTED) return `You can't join “${title}”: ${session.reason}`;
  return `You left “${title}”.`;
}
