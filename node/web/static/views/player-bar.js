// The player bar ("Now playing"): shown at the bottom of every page but the room's own while
// you are in a room. The room's title, who is speaking, your controls (Raise hand / Lower hand
// or Mute / Unmute, Leave quietly) and Back to room. It only draws: the session
// (room/session.js) does the work, the player (room/player.js) says when to show it.

import { clear, h } from "../dom.js";
import { Status } from "../room/connection.js";
import { speakingLine } from "../room/now-playing.js";
import { finishedText } from "../room/player.js";
import { onStage } from "../room/state.js";

const STATUS_TEXT = {
  [Status.CONNECTING]: "Connecting…",
  [Status.RECONNECTING]: "Connection lost. Reconnecting…",
};

export class PlayerBar {
  /** dock: the element the bar lives in; actions: leave(), dismiss(), resume(). */
  constructor(dock, actions) {
    this.actions = actions;
    this.session = null;
    this.live = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
    this.region = h("section", { class: "player", role: "region", "aria-label": "Now playing", hidden: true });
    this.line = h("p", { class: "player-line" });
    this.error = h("p", { class: "notice-error player-error", role: "alert" });
    clear(dock, this.live, this.region);
    // pages keep their bottom (and the room's sticky controls) clear of the bar: its height
    // as --player-space on <html>
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => this.measure()).observe(this.region);
    }
  }

  measure() {
    const height = this.region.hidden ? 0 : this.region.offsetHeight;
    document.documentElement.style.setProperty("--player-space", `${height}px`);
  }

  /** Show SESSION (null hides the bar). */
  show(session) {
    if (session !== this.session) this.error.textContent = "";
    this.session = session;
    this.draw();
  }

  /** The session changed (a kind from RoomSession.subscribe). */
  update(kind, session, ...args) {
    if (session !== this.session) return;
    if (kind === "speaking") this.drawLine();
    else if (kind === "error") this.error.textContent = args[0] || "";
    else if (kind === "room" || kind === "status" || kind === "paused") this.draw();
  }

  announce(text) {
    this.live.textContent = text;
  }

  draw() {
    const session = this.session;
    const shown = Boolean(session);
    const hadFocus = this.region.contains(document.activeElement);
    const focusKey = hadFocus ? document.activeElement.dataset.key || "" : null;
    this.region.hidden = !shown;
    document.body.classList.toggle("has-player", shown);
    if (!shown) {
      clear(this.region);
      this.measure();
      // the bar went away under the keyboard (Leave quietly, Dismiss): on to the page
      if (hadFocus) document.getElementById("main")?.focus();
      return;
    }
    const room = session.room || { title: "", speakers: [] };
    const finished = session.finished;
    const status = finished ? finishedText(session)
      : STATUS_TEXT[session.status] || (session.paused ? "Paused on this device." : "");
    this.drawLine();
    clear(this.region,
      h("div", { class: "player-now" },
        h("span", { class: `player-dot ${finished ? "off" : ""}`, "aria-hidden": "true" }),
        h("div", { class: "player-text" },
          h("p", { class: "player-title" }, room.title || "Room"),
          finished ? null : this.line,
          status ? h("p", { class: "player-status" }, status) : null,
          !finished && room.you && room.you.invited_to_speak
            ? h("p", { class: "player-status" }, "You're invited to speak. Go back to the room to join the stage.")
            : null)),
      this.error,
      h("div", { class: "player-controls" }, this.controls(session, room)));
    if (focusKey !== null) {
      // keep the keyboard where it was; a control that went away hands it to the first one
      const again = focusKey && this.region.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      (again || this.region.querySelector("button, a"))?.focus();
    }
    this.measure();
  }

  drawLine() {
    const session = this.session;
    this.line.textContent = session ? speakingLine(session.room, session.levels) : "";
  }

  controls(session, room) {
    const button = (label, key, onclick, extra = "secondary", disabled = false) =>
      h("button", { type: "button", class: `small ${extra}`, dataset: { key }, onclick, disabled }, label);
    const back = h("a", { href: session.page || "/", class: "button small primary", dataset: { key: "bar-back" } },
      "Back to room");
    if (session.finished) {
      return [back, button("Dismiss", "bar-dismiss", () => this.actions.dismiss())];
    }
    const you = room.you;
    const offline = session.status !== Status.LIVE;
    const out = [];
    if (session.paused) out.push(button("Resume", "bar-resume", () => this.actions.resume(), "primary"));
    if (you && onStage(you)) {
      out.push(you.muted
        ? button("Unmute", "bar-unmute", () => this.act("unmute"), "secondary", offline || you.mute_locked)
        : button("Mute", "bar-mute", () => this.act("mute"), "secondary", offline));
    } else if (you) {
      out.push(you.hand_raised
        ? button("Lower hand", "bar-lower", () => this.act("lower_hand"), "secondary", offline)
        : button("Raise hand", "bar-raise", () => this.act("raise_hand"), "secondary", offline || you.invited_to_speak));
    }
    out.push(button("Leave quietly", "bar-leave", () => this.actions.leave()), back);
    return out;
  }

  async act(action) {
    this.error.textContent = "";
    try {
      await this.session.command(action);
    } catch (error) {
      this.error.textContent = error.message;
    }
  }
}
