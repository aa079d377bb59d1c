// Reactions: one button per reaction (named by its meaning), and the node's coalesced
// `reactions` messages shown briefly on each sender's avatar. Self-contained: the room
// view gives it a way to send and the element holding the people's tiles.

import { h, clear } from "../dom.js";

const SHOW_MS = 2500;
const PER_PERSON = 3; // badges on one avatar at once

/** The fixed set (node/rooms/chat.py REACTIONS): wire name -> [accessible name, symbol]. */
export const REACTIONS = {
  clap: ["Clap", "👏"],
  laugh: ["Laugh", "😂"],
  heart: ["Heart", "❤️"],
  plus_one: ["Plus one", "👍"],
  fire: ["Fire", "🔥"],
  hundred: ["Hundred points", "💯"],
};

/**
 * A toolbar of reaction buttons. `send(fields)` resolves on the node's reply; `onError`
 * gets the node's refusal (too many reactions). Returns { element, update(live) }.
 */
export function reactionBar({ send, onError }) {
  const buttons = Object.entries(REACTIONS).map(([name, [label, symbol]]) => h("button", {
    type: "button", class: "reaction-button", "aria-label": label, title: label, dataset: { key: `react-${name}` },
    onclick: async () => {
      try {
        await send({ type: "react", reaction: name });
      } catch (error) {
        onError?.(error.message);
      }
    },
  }, h("span", { "aria-hidden": "true" }, symbol)));
  const element = h("div", { class: "reactions", role: "toolbar", "aria-label": "Reactions" }, buttons);
  return {
    element,
    update(live) {
      element.hidden = !live;
      for (const b of buttons) b.disabled = !live;
    },
  };
}

/**
 * Reactions shown on the avatars under ROOT (the tiles' `li.person` with `data-user`) for
 * a moment. The room view redraws its tiles often, so badges are kept here and painted
 * again after each redraw (`paint`). A screen reader hears each batch through ANNOUNCE
 * (a polite live region).
 */
export class ReactionBadges {
  constructor(root, announce) {
    this.root = root;
    this.announce = announce;
    this.recent = new Map(); // handle -> {names, until}
    this.timer = null;
  }

  /** Who reacted with what, {handle: [name, ...]}: a `reactions` message, or a large room's
   * `audience` flush carrying them (state.js reactionsOf). */
  show(reactions) {
    const until = Date.now() + SHOW_MS;
    const said = [];
    for (const [user, names] of Object.entries(reactions || {})) {
      const known = (Array.isArray(names) ? names : []).filter((n) => n in REACTIONS);
      if (!known.length) continue;
      this.recent.set(user, { names: known.slice(0, PER_PERSON), until });
      said.push(`${this.nameOf(user)}: ${known.map((n) => REACTIONS[n][0]).join(", ")}`);
    }
    if (this.announce && said.length) this.announce.textContent = `Reactions: ${said.join("; ")}`;
    this.paint();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.paint(), SHOW_MS + 50);
  }

  nameOf(user) {
    const tile = this.tile(user);
    return (tile && tile.querySelector(".person-name")?.textContent) || user;
  }

  tile(user) {
    return [...this.root.querySelectorAll("li.person")].find((li) => li.dataset.user === user);
  }

  /** Put the current badges on the tiles (and take expired ones off). */
  paint() {
    const now = Date.now();
    for (const [user, entry] of this.recent) if (entry.until <= now) this.recent.delete(user);
    for (const badge of this.root.querySelectorAll(".reaction-badge")) {
      const li = badge.closest("li.person");
      if (!li || !this.recent.has(li.dataset.user)) badge.remove();
    }
    for (const [user, entry] of this.recent) {
      const tile = this.tile(user);
      if (!tile) continue;
      let badge = tile.querySelector(".reaction-badge");
      if (!badge) {
        badge = h("span", { class: "reaction-badge", "aria-hidden": "true" });
        tile.append(badge);
      }
      clear(badge, entry.names.map((n) => REACTIONS[n][1]).join(""));
      badge.dataset.reactions = entry.names.join(" ");
    }
  }

  stop() {
    clearTimeout(this.timer);
  }
}
