// The room: stage with speaking rings, listeners, hands, the invitation prompt, your
// controls, and moderation. Joining opens the room socket and starts audio.

import { get, post, userPath } from "../api.js";
import { avatar, clear, formatWhen, h, nodeOf, plural, profileHref } from "../dom.js";
import { RoomAudio } from "../room/audio.js";
import { chatPanel } from "../room/chat.js";
import { ReactionBadges, reactionBar } from "../room/reactions.js";
import { RoomConnection, Status } from "../room/connection.js";
import { handleOf, localRoom, remoteRoom } from "../room/source.js";
import { find, isModerator, onStage } from "../room/state.js";
import { reportMenu } from "./report.js";

const PREVIEW_POLL_MS = 4000;
const AUDIO_STALL_MS = 2000; // a "disconnected" peer connection this long is restarted
const AUDIO_RESTARTS = 5;
const ROLE_LABEL = { host: "Host", moderator: "Moderator", speaker: "Speaker", listener: "Listener" };

const STATUS_TEXT = {
  [Status.CONNECTING]: "Connecting…",
  [Status.RECONNECTING]: "Connection lost. Reconnecting…",
  [Status.ENDED]: "Room ended. The host has closed this room.",
  [Status.REMOVED]: "You were removed from this room.",
  [Status.LEFT]: "You left the room.",
};

/** `/rooms/{id}`: a room on this node. */
export function roomView(root, app, [roomId], query, navState) {
  return roomPage(root, app, localRoom(roomId, query.get("invite")), navState);
}

/**
 * `/remote?url=ROOM_URL`: a room on another node, joined through this one. Same view, same
 * WebSocket protocol; only the URLs differ (room/source.js).
 */
export function remoteRoomView(root, app, _params, query, navState) {
  const url = query.get("url");
  if (!url) {
    document.title = `Room not found · ${app.instance.name}`;
    root.append(h("h1", {}, "Room not found"), h("p", {}, "This link does not say which room to open."),
      h("a", { href: "/", class: "button secondary" }, "Back to the hallway"));
    return null;
  }
  return roomPage(root, app, remoteRoom(url, query.get("invite")), navState);
}

function roomPage(root, app, source, navState) {
  const me = app.me.handle;
  const audioElement = h("audio", { class: "visually-hidden", autoplay: true });
  const banner = h("div", { class: "banner", role: "status", "aria-live": "polite" });
  const alert = h("p", { class: "notice-error", role: "alert" });
  const head = h("header", { class: "room-head" });
  const prompt = h("div", { class: "invitation-slot" });
  const stage = h("section", { class: "stage", "aria-labelledby": "stage-h" });
  const hands = h("section", { class: "hands", "aria-labelledby": "hands-h" });
  const audience = h("section", { class: "audience", "aria-labelledby": "audience-h" });
  const share = h("div", { class: "share-slot" });
  const controls = h("div", { class: "controls", role: "toolbar", "aria-label": "Room controls" });
  root.append(h("article", { class: "room" }, head, banner, alert, prompt, stage, hands, audience, share,
    controls, audioElement));
  // chat and reactions (room/chat.js, room/reactions.js): built once, updated on every draw
  const sendRequest = (fields) => (view.connection ? view.connection.request(fields)
    : Promise.reject(new Error("not connected; try again in a moment")));
  const chatUi = chatPanel({ me, send: sendRequest });
  const reactUi = reactionBar({ send: sendRequest, onError: (message) => say(message) });
  const heard = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const badges = new ReactionBadges(root, heard);
  chatUi.element.hidden = true;
  reactUi.update(false);
  share.after(chatUi.element);
  controls.before(reactUi.element, heard);

  const view = {
    room: null,
    status: null,
    reason: "",
    joined: false,
    connection: null,
    audio: null,
    audioState: "",
    openMenu: null,
    levels: {},
    stopped: false,
    timer: null,
    audioTimer: null,
    audioRestarts: 0,
    source,
  };
  window.salonDebug.room = view;
  Object.defineProperty(window.salonDebug, "pc", {
    configurable: true, get: () => (view.audio ? view.audio.pc : null),
  });
  window.salonDebug.inbound = () => (view.audio ? view.audio.inbound() : Promise.resolve(null));

  // ---- loading and joining -------------------------------------------------------------

  async function preview() {
    clearTimeout(view.timer);
    if (view.joined || view.stopped) return;
    try {
      const room = await source.preview();
      if (view.joined || view.stopped) return;
      view.room = room;
      if (room.status === "ended") view.status = Status.ENDED;
      draw();
      if (navState && navState.autoJoin && room.status === "live") {
        navState = null;
        join();
        return;
      }
    } catch (error) {
      if (error.status === 404) {
        view.status = Status.REJECTED;
        view.reason = "There is no such room.";
        draw();
        return;
      }
      say(error.message);
    }
    if (!view.stopped && !view.joined && view.status !== Status.ENDED) {
      view.timer = setTimeout(preview, PREVIEW_POLL_MS);
    }
  }

  function join() {
    if (view.joined) return;
    clearTimeout(view.timer);
    view.joined = true;
    view.status = Status.CONNECTING;
    view.audio = new RoomAudio((signal) => view.connection.signal(signal), audioElement, {
      onState: (state) => { view.audioState = state; drawBanner(); watchAudio(state); },
      onMicError: (error) => say(`Your microphone is not available (${error.name}). You can still listen.`),
    });
    audioElement.play().catch(() => {}); // inside the click: lets audio play when it arrives
    view.connection = new RoomConnection(source, me, {
      onRoom: (room, message) => {
        view.room = room;
        // a full state carries the current speaking levels: rings show at once on joining
        if (!message) view.levels = room.levels || {};
        if (message && message.event === "muted" && message.user === me && view.audio) {
          view.audio.setMicEnabled(!message.muted);
        }
        draw();
      },
      onStatus: statusChanged,
      onSpeaking: (levels) => { view.levels = levels; paintLevels(); },
      onSignal: (signal) => view.audio && view.audio.handle(signal),
      onReactions: (reactions) => badges.show(reactions),
      onError: (message) => { if (!/signalling: ice/.test(message)) say(message); },
    });
    draw();
    view.connection.open();
  }

  /**
   * A peer connection that drops while the room socket is fine (the node restarted, or the
   * path to it changed) is started again: the node has no media session for us any more.
   */
  function watchAudio(state) {
    clearTimeout(view.audioTimer);
    if (state === "connected") view.audioRestarts = 0;
    if (state !== "disconnected" && state !== "failed") return;
    if (view.audioRestarts >= AUDIO_RESTARTS) return; // the banner says to leave and join again
    view.audioTimer = setTimeout(() => {
      const pc = view.audio && view.audio.pc;
      if (!pc || view.status !== Status.LIVE || !["disconnected", "failed"].includes(pc.connectionState)) return;
      view.audioRestarts += 1;
      view.audio.start(canSpeak(view.room));
    }, state === "failed" ? 500 : AUDIO_STALL_MS);
  }

  function statusChanged(status, reason) {
    const wasReconnecting = view.status === Status.RECONNECTING;
    view.status = status;
    view.reason = reason;
    if (status === Status.LIVE && view.audio) {
      const pc = view.audio.pc;
      const healthy = pc && ["connected", "connecting", "new"].includes(pc.connectionState);
      if (!pc || (wasReconnecting && !healthy)) view.audio.start(canSpeak(view.room));
    }
    if ([Status.ENDED, Status.REMOVED, Status.REJECTED, Status.LEFT].includes(status)) {
      if (view.audio) view.audio.close();
      view.audio = null;
      view.levels = {};
      if (status === Status.ENDED && view.room) view.room = { ...view.room, status: "ended" };
    }
    draw();
    if (status === Status.ENDED || status === Status.REMOVED) banner.focus();
  }

  function canSpeak(room) {
    const you = room && room.you;
    return Boolean(you && onStage(you) && !you.muted);
  }

  async function act(action, user) {
    say("");
    try {
      await view.connection.command(action, user);
    } catch (error) {
      say(error.message);
    }
  }

  async function leave() {
    if (view.connection) await view.connection.leave();
    statusChanged(Status.LEFT, "");
  }

  async function startScheduled() {
    try {
      view.room = await post(`/api/rooms/${encodeURIComponent(source.id)}/start`);
      join();
    } catch (error) {
      say(error.message);
    }
  }

  function say(message) {
    alert.textContent = message || "";
  }

  // ---- drawing -------------------------------------------------------------------------

  function draw() {
    const focusKey = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.key : null;
    const room = view.room;
    drawBanner();
    if (!room) {
      clear(head, h("h1", {}, view.status === Status.REJECTED ? "Room not available" : "Loading room…"));
      clear(controls, backLink());
      [stage, hands, audience, prompt, share].forEach((el) => clear(el));
      return;
    }
    document.title = `${room.title} · ${app.instance.name}`;
    drawHead(room);
    drawPrompt(room);
    drawStage(room);
    drawHands(room);
    drawAudience(room);
    drawShare(room);
    drawControls(room);
    drawChat(room);
    paintLevels();
    if (focusKey) {
      const again = root.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
    }
  }

  function drawChat(room) {
    const inRoom = view.joined && room.status === "live" && Boolean(room.you)
      && [Status.LIVE, Status.RECONNECTING].includes(view.status);
    chatUi.element.hidden = !inRoom;
    chatUi.update(room, inRoom && view.status === Status.LIVE);
    reactUi.update(inRoom && view.status === Status.LIVE);
    badges.paint();
  }

  function drawBanner() {
    let text = STATUS_TEXT[view.status] || "";
    if (view.status === Status.REJECTED) text = `You can't join this room: ${view.reason}`;
    if (view.status === Status.LIVE) {
      if (view.audioState === "failed") text = "Audio could not connect. Leave and join again.";
      else if (view.audioState === "connecting" || view.audioState === "new") text = "Connecting audio…";
      else text = "";
    }
    if (!view.joined && view.room && view.room.status === "scheduled") {
      text = `This room starts ${formatWhen(view.room.start_time)}.`;
    }
    banner.textContent = text;
    banner.hidden = !text;
    banner.dataset.state = view.status || "";
    banner.tabIndex = -1;
  }

  function drawHead(room) {
    const node = room.node || nodeOf(room.url, location.host);
    const badge = room.unknown ? null // a pasted remote link: we learn its state on Join
      : room.status === "live" ? h("span", { class: "badge live" }, "Live")
      : room.status === "scheduled" ? h("span", { class: "badge upcoming" }, "Upcoming")
        : h("span", { class: "badge ended" }, "Ended");
    clear(head,
      h("p", { class: "card-meta" }, badge, room.unknown ? null : h("span", {}, `${room.join_mode} room`),
        h("span", { class: "node" }, node === location.host ? app.instance.name : node)),
      h("h1", {}, room.title),
      room.description ? h("p", { class: "room-desc" }, room.description) : null,
      room.host ? h("p", { class: "muted" }, "Hosted by ",
        h("a", { href: profileHref(room.host) }, room.host_display_name || room.host),
        room.status === "live" && !room.unknown
          ? ` · ${plural(room.listener_count || 0, "listener", "listeners")}` : "") : null,
      !view.joined && (room.blocked_on_stage || []).length
        ? h("p", { class: "block-warning", role: "note" },
          `You blocked ${room.blocked_on_stage.map(handleOf).join(", ")}, who ${room.blocked_on_stage.length === 1 ? "is" : "are"}`
          + " on stage in this room.") : null,
      source.remote ? h("p", { class: "hint remote-note" },
        `This room is on ${node}. You take part through ${app.instance.name}.`) : null,
      room.host === me || room.unknown ? null : reportMenu(room.url, `“${room.title}”`, source.remote));
  }

  function drawPrompt(room) {
    const you = view.joined && room.you;
    if (!you || !you.invited_to_speak || view.status !== Status.LIVE) {
      clear(prompt);
      return;
    }
    clear(prompt, h("section", { class: "invitation", role: "region", "aria-labelledby": "invite-h" },
      h("h2", { id: "invite-h" }, "You're invited to speak"),
      h("p", {}, "Join the stage to talk. You can mute yourself at any time."),
      h("div", { class: "row" },
        h("button", { type: "button", class: "primary", dataset: { key: "accept" },
          onclick: () => act("accept_invite") }, "Join as speaker"),
        h("button", { type: "button", class: "secondary", dataset: { key: "decline" },
          onclick: () => act("decline_invite") }, "Not now"))));
  }

  function drawStage(room) {
    clear(stage, h("h2", { id: "stage-h" }, "Stage"),
      room.speakers.length
        ? h("ul", { class: "people stage-grid" }, room.speakers.map((p) => tile(room, p)))
        : h("p", { class: "muted" }, room.unknown ? "Join to see who is here."
          : room.status === "live" ? "Nobody is on stage." : "The stage opens when the room starts."));
  }

  /**
   * The audience: people someone on stage follows first ("Followed by the speakers", shown
   * only when there are any), then "Others in the room". The node marks them
   * (followed_by_speakers) in its room view; room/connection.js refetches the view when the
   * stage or the audience changes.
   */
  function drawAudience(room) {
    const count = room.listeners.length;
    const heading = h("h2", { id: "audience-h" }, "Listeners ", h("span", { class: "count" }, `(${count})`));
    if (!count) {
      clear(audience, heading, h("p", { class: "muted" }, "No listeners yet."));
      return;
    }
    const followed = room.listeners.filter((p) => p.followed_by_speakers);
    if (!followed.length) {
      clear(audience, heading, h("ul", { class: "people audience-grid" }, room.listeners.map((p) => tile(room, p))));
      return;
    }
    const others = room.listeners.filter((p) => !p.followed_by_speakers);
    const group = (id, title, people) => h("div", { class: "audience-group", role: "group", "aria-labelledby": id },
      h("h3", { id }, title),
      h("ul", { class: "people audience-grid" }, people.map((p) => tile(room, p))));
    clear(audience, heading,
      group("followed-h", "Followed by the speakers", followed),
      others.length ? group("others-h", "Others in the room", others) : null);
  }

  function drawHands(room) {
    const mine = view.joined && isModerator(room.you);
    hands.hidden = !mine || room.hands.length === 0;
    if (hands.hidden) {
      clear(hands);
      return;
    }
    clear(hands, h("h2", { id: "hands-h" }, `Raised hands (${room.hands.length})`),
      h("ol", { class: "hand-queue" }, room.hands.map((user) => {
        const p = find(room, user);
        const name = (p && p.display_name) || user;
        return h("li", { class: "hand" }, avatar(name, "small"),
          h("a", { href: profileHref(user) }, name),
          p && p.invited_to_speak ? h("span", { class: "muted" }, "Invited")
            : h("button", { type: "button", class: "primary small", dataset: { key: `hand-invite-${user}` },
              onclick: () => act("invite_to_speak", user) }, "Invite to speak"));
      })));
  }

  function tile(room, p) {
    const name = p.display_name || p.user;
    const menuId = `menu-${p.user.replace(/[^a-z0-9_-]/gi, "_")}`;
    const open = view.openMenu === p.user;
    const actions = moderation(room, p);
    const toggle = h("button", {
      type: "button", class: "person-button", "aria-expanded": open ? "true" : "false",
      "aria-controls": menuId, dataset: { key: `person-${p.user}` },
      onclick: () => { view.openMenu = open ? null : p.user; draw(); },
    },
    h("span", { class: "ring" }, avatar(name)),
    h("span", { class: "person-name" }, name),
    p.role !== "speaker" && p.role !== "listener" ? h("span", { class: "role-tag" }, ROLE_LABEL[p.role]) : null,
    p.user === me ? h("span", { class: "role-tag you" }, "You") : null,
    onStage(p) && p.muted ? h("span", { class: "muted-badge", title: "Muted" }, mutedIcon(),
      h("span", { class: "visually-hidden" }, "muted")) : null,
    p.hand_raised ? h("span", { class: "hand-badge", title: "Hand raised" }, "✋",
      h("span", { class: "visually-hidden" }, "hand raised")) : null,
    p.connected === false ? h("span", { class: "visually-hidden" }, "reconnecting") : null,
    // moderators only: someone a moderator of this room blocked (Clubhouse's shield)
    p.blocked_by_moderator ? h("span", { class: "shield-badge", title: "Blocked by a moderator" }, "🛡",
      h("span", { class: "visually-hidden" }, "blocked by a moderator")) : null);
    const menu = h("div", { class: "person-menu", id: menuId, role: "group", "aria-label": `Actions for ${name}`,
      hidden: !open, onkeydown: (e) => { if (e.key === "Escape") closeMenu(p.user); } },
    h("a", { href: profileHref(p.user), dataset: { key: `profile-${p.user}` } }, "View profile"),
    actions, p.user === me ? null : blockButton(p, name));
    return h("li", { class: `person ${p.connected === false ? "away" : ""}`, dataset: { user: p.user } },
      toggle, menu);
  }

  function blockButton(p, name) {
    return h("button", {
      type: "button", class: "small danger", dataset: { key: `block-${p.user}` },
      onclick: async () => {
        view.openMenu = null;
        try {
          await post(`${userPath(p.user)}/block`);
          say(`You blocked ${name}. They cannot join your rooms or follow you.`);
          if (view.connection) view.connection.refreshSoon(); // the shield comes with the view
        } catch (error) {
          say(error.message);
        }
        draw();
      },
    }, "Block");
  }

  function closeMenu(user) {
    view.openMenu = null;
    draw();
    root.querySelector(`[data-key="${CSS.escape(`person-${user}`)}"]`)?.focus();
  }

  function moderation(room, p) {
    const you = room.you;
    if (!view.joined || !isModerator(you) || p.user === me || p.role === "host" || view.status !== Status.LIVE) {
      return [];
    }
    const button = (label, action, extra = "") => h("button", {
      type: "button", class: `small ${extra}`, dataset: { key: `${action}-${p.user}` },
      onclick: () => { view.openMenu = null; act(action, p.user); },
    }, label);
    const out = [];
    if (!onStage(p)) {
      if (!p.invited_to_speak) out.push(button("Invite to speak", "invite_to_speak", "primary"));
    } else {
      if (p.role === "speaker") out.push(button("Move to audience", "move_to_audience"));
      out.push(p.mute_locked ? button("Let them unmute", "unmute") : button("Mute", "mute"));
    }
    if (p.role === "moderator") out.push(button("Remove moderator", "unmake_moderator"));
    else out.push(button("Make moderator", "make_moderator"));
    if (p.role !== "moderator" || you.role === "host") out.push(button("Remove", "remove", "danger"));
    return out;
  }

  function drawShare(room) {
    if (!room.invite_link || room.join_mode !== "closed" || room.status === "ended") {
      clear(share);
      return;
    }
    const input = h("input", { readonly: true, value: room.invite_link, id: "invite-link" });
    const copied = h("span", { class: "hint", role: "status" });
    clear(share, h("section", { class: "share", "aria-labelledby": "share-h" },
      h("h2", { id: "share-h" }, "Invite people"),
      h("p", { class: "hint" }, "This is a closed room: only people with this link (or your invitation) can join."),
      h("div", { class: "copy-row" },
        h("label", { for: "invite-link", class: "visually-hidden" }, "Invite link"), input,
        h("button", { type: "button", class: "secondary", dataset: { key: "copy" }, onclick: async () => {
          try {
            await navigator.clipboard.writeText(room.invite_link);
            copied.textContent = "Copied.";
          } catch {
            input.select();
            copied.textContent = "Press Ctrl+C to copy.";
          }
        } }, "Copy invite link"), copied)));
  }

  function drawControls(room) {
    const buttons = [];
    const button = (label, key, onclick, extra = "secondary", disabled = false) =>
      h("button", { type: "button", class: extra, dataset: { key }, onclick, disabled }, label);
    const terminal = [Status.ENDED, Status.REMOVED, Status.REJECTED].includes(view.status);
    if (terminal || room.status === "ended") {
      if (room.replay && !source.remote) {
        buttons.push(h("a", { href: new URL(room.replay.url).pathname, class: "button primary" }, "Replay"));
      }
      buttons.push(backLink());
    } else if (!view.joined || view.status === Status.LEFT) {
      if (room.status === "live") {
        buttons.push(button("Join", "join", () => {
          view.joined = false;
          view.status = null;
          join();
        }, "primary"));
      } else if (room.status === "scheduled" && room.invite_link && !source.remote) {
        buttons.push(button("Start room", "start", startScheduled, "primary"));
      }
      buttons.push(backLink());
    } else {
      const you = room.you;
      // Commands need the socket: while (re)connecting they wait, visibly.
      const offline = view.status !== Status.LIVE;
      if (you && onStage(you)) {
        if (you.muted) {
          buttons.push(button("Unmute", "unmute", () => act("unmute"), "primary", offline || you.mute_locked));
        } else {
          buttons.push(button("Mute", "mute", () => act("mute"), "secondary", offline));
        }
      } else if (you) {
        buttons.push(you.hand_raised
          ? button("Lower hand", "lower", () => act("lower_hand"), "secondary", offline)
          : button("Raise hand", "raise", () => act("raise_hand"), "primary", offline || you.invited_to_speak));
      }
      buttons.push(button("Leave quietly", "leave", leave));
      if (isModerator(you)) buttons.push(button("End room", "end", () => act("end"), "danger", offline));
      if (you && you.mute_locked) {
        buttons.push(h("span", { class: "hint" }, "A moderator muted you."));
      }
    }
    clear(controls, buttons);
  }

  function backLink() {
    return h("a", { href: "/", class: "button secondary", dataset: { key: "back" } }, "Back to the hallway");
  }

  function paintLevels() {
    for (const li of stage.querySelectorAll("li.person")) {
      const level = Number(view.levels[li.dataset.user] || 0);
      li.style.setProperty("--level", String(level));
      li.classList.toggle("speaking", level > 0.05);
    }
  }

  preview();
  return () => {
    view.stopped = true;
    clearTimeout(view.timer);
    clearTimeout(view.audioTimer);
    badges.stop();
    if (view.connection) {
      // Navigating away is leaving quietly (there is no mini-player across pages yet).
      if (view.status === Status.LIVE) view.connection.send({ type: "command", id: 0, action: "leave" });
      view.connection.stop();
    }
    if (view.audio) view.audio.close();
    if (window.salonDebug.room === view) window.salonDebug.room = null;
  };
}

function mutedIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M12 3a3 3 0 0 0-3 3v5a3 3 0 0 0 5.2 2.1L9.4 8.3V6a2.6 2.6 0 0 1 5.2 0v5h1.8V6A4.4 4.4 0 0 0 12 3zM3.7 3.3 2.3 4.7l17 17 1.4-1.4zM6 11a6 6 0 0 0 5 5.9V20h2v-3.1a6 6 0 0 0 1.5-.5l-1.5-1.5A4 4 0 0 1 8 11z");
  svg.append(path);
  return svg;
}
