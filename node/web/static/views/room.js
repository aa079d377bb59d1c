// The room: stage with speaking rings, listeners, hands, the invitation prompt, your
// controls, and moderation. Joining starts a room session (room/session.js: the socket and
// the audio), owned by the player (room/player.js) so it outlives this page: leaving the page
// only detaches from it, and coming back attaches again without a new join.

import { get, post, userPath } from "../api.js";
import { avatar, clear, formatWhen, h, nodeOf, plural, profileHref } from "../dom.js";
import { chatPanel } from "../room/chat.js";
import { Status } from "../room/connection.js";
import { SPEAKING_LEVEL } from "../room/now-playing.js";
import { ReactionBadges, reactionBar } from "../room/reactions.js";
import { drawSharing } from "../room/share.js";
import { handleOf, localRoom, remoteRoom } from "../room/source.js";
import { find, isModerator, onStage } from "../room/state.js";
import { invitationNote, recordedNotice, recordingControls, recordingIndicator, stopReason } from "../room/recording.js";
import { reportMenu } from "./report.js";
import { rsvpPanel } from "./rsvp.js";

const PREVIEW_POLL_MS = 4000;
const LARGE_AUDIENCE_SHOWN = 60; // listeners shown without "Show listeners" in a large room
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
  const player = app.player;
  const banner = h("div", { class: "banner", role: "status", "aria-live": "polite" });
  const alert = h("p", { class: "notice-error", role: "alert" });
  const head = h("header", { class: "room-head" });
  const rsvpSlot = h("div", { class: "rsvp-slot" }); // Notify me, count, .ics (views/rsvp.js)
  const prompt = h("div", { class: "invitation-slot" });
  const stage = h("section", { class: "stage", "aria-labelledby": "stage-h" });
  const hands = h("section", { class: "hands", "aria-labelledby": "hands-h" });
  const audience = h("section", { class: "audience", "aria-labelledby": "audience-h" });
  const share = h("div", { class: "share-slot" });
  const sharing = h("div", { class: "sharing-slot" });
  const controls = h("div", { class: "controls", role: "toolbar", "aria-label": "Room controls" });
  root.append(h("article", { class: "room" }, head, rsvpSlot, sharing, banner, alert, prompt, stage, hands, audience, share,
    controls));
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
    session: null, // the room session this page shows, once joined
    audioState: "",
    openMenu: null,
    levels: {},
    listenerPages: null, // a large audience's "Show listeners" pages: {items, next, loading}
    stopped: false,
    timer: null,
    detach: null,
    source,
    get connection() { return view.session ? view.session.connection : null; },
    get audio() { return view.session ? view.session.audio : null; },
  };
  window.salonDebug.room = view;

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

  /** Join: a new session, from the click (so audio may play). In another room? Leave it. */
  function join() {
    if (view.joined) return;
    clearTimeout(view.timer);
    const { session, left } = player.start(source, me, view.room);
    attach(session);
    if (left) say(`You left “${left}” to join this room.`);
    session.join();
  }

  /** Show SESSION on this page: from now on it only draws what the session says. */
  function attach(session) {
    const previous = view.detach; // a session this page showed before (you left, then Join)
    view.session = session;
    source = session.source; // the same room; a remote room's alias is known to this one
    view.source = source;
    view.joined = true;
    sync();
    view.detach = player.attach(session, sessionChanged);
    if (previous) previous();
    if (session.paused) player.pause(false); // back in the room (a click): hear it again
    draw();
  }

  function sync() {
    const session = view.session;
    view.room = session.room || view.room;
    view.status = session.status;
    view.reason = session.reason;
    view.levels = session.levels;
    view.audioState = session.audioState;
  }

  function sessionChanged(kind, ...args) {
    if (view.stopped) return;
    sync();
    if (kind === "speaking") paintLevels();
    else if (kind === "audio") drawBanner();
    else if (kind === "error") say(args[0]);
    else if (kind === "reactions") badges.show(args[0]);
    else if (kind === "status") {
      draw();
      if (view.status === Status.ENDED || view.status === Status.REMOVED) banner.focus();
    } else if (kind === "room") {
      draw();
      const stopped = stopReason(args[1]); // the node stopped a recording (quota, disk full)
      if (stopped && view.room && view.room.you && view.room.you.role === "host") say(stopped);
    }
  }

  async function act(action, user) {
    say("");
    try {
      await view.session.command(action, user);
    } catch (error) {
      say(error.message);
    }
  }

  async function leave() {
    if (view.session) await view.session.leave();
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
      [stage, hands, audience, prompt, share, sharing].forEach((el) => clear(el));
      return;
    }
    document.title = `${room.title} · ${app.instance.name}`;
    drawHead(room);
    drawRsvp(room);
    drawPrompt(room);
    drawStage(room);
    drawHands(room);
    drawAudience(room);
    drawShare(room);
    drawSharing(sharing, room, { joined: view.joined && view.status === Status.LIVE, remote: Boolean(source.remote) });
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
      h("p", { class: "card-meta" }, badge, recordingIndicator(room), room.unknown ? null : h("span", {}, `${room.join_mode} room`),
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

  let rsvp = null;
  function drawRsvp(room) {
    if (room.status !== "scheduled" || room.unknown) {
      rsvp = null;
      clear(rsvpSlot);
      return;
    }
    const shown = source.remote ? { ...room, remote: true, url: source.url } : room;
    if (!rsvp) {
      rsvp = rsvpPanel(source.remote ? source.url : room.id, shown);
      clear(rsvpSlot, rsvp.element);
    } else {
      rsvp.update(shown);
    }
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
      invitationNote(room),
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
    if (room.coalesced) {
      drawLargeAudience(room);
      return;
    }
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

  /**
   * A large audience (the node coalesces its updates): the count, the listeners the view
   * lists, and "Show listeners" to page through everyone (GET …/listeners).
   */
  function drawLargeAudience(room) {
    const count = room.listener_count || 0;
    const heading = h("h2", { id: "audience-h" }, "Listeners ", h("span", { class: "count" }, `(${count})`));
    const paged = view.listenerPages;
    const path = source.listenersPath ? source.listenersPath() : null;
    const toggle = path ? h("button", { type: "button", class: "secondary small", dataset: { key: "show-listeners" },
      "aria-expanded": String(Boolean(paged)),
      onclick: () => { view.listenerPages = paged ? null : { items: [], next: "", loading: false }; if (!paged) morePages(); else draw(); } },
    paged ? "Hide listeners" : "Show listeners") : null;
    // moderators get every arrival as an event: show the first ones, page for the rest
    const people = paged ? paged.items : room.listeners.slice(0, LARGE_AUDIENCE_SHOWN);
    clear(audience, heading, toggle,
      h("ul", { class: "people audience-grid" }, people.map((p) => tile(room, p))),
      paged && paged.next !== null ? h("button", { type: "button", class: "secondary small",
        dataset: { key: "more-listeners" }, disabled: paged.loading, onclick: morePages }, "More listeners") : null);
  }

  async function morePages() {
    const paged = view.listenerPages;
    const path = source.listenersPath ? source.listenersPath() : null;
    if (!paged || !path || paged.loading || paged.next === null) return;
    paged.loading = true;
    draw();
    try {
      const query = paged.next ? `?after=${encodeURIComponent(paged.next)}` : "";
      const page = await get(`${path}${query}`);
      if (view.listenerPages !== paged) return;
      paged.items.push(...(page.listeners || []));
      paged.next = page.next ?? null;
    } catch (error) {
      say(error.message);
    } finally {
      paged.loading = false;
      draw();
    }
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
    // every chat message of theirs goes, and they post no more in this room (moderators' stay)
    if (p.role !== "moderator") out.push(button("Hide messages", "hide_messages"));
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
        buttons.push(recordedNotice(room), button("Join", "join", () => {
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
      buttons.push(...recordingControls(room, you, { button, say, offline, remote: source.remote }));
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
      li.classList.toggle("speaking", level > SPEAKING_LEVEL);
    }
  }

  // Back in the room you are in (Back to room, a link, the history): no new join.
  const current = player.current(source);
  if (current) attach(current);
  else preview();
  return () => {
    // Navigating away keeps the session (the player bar shows it); only detach.
    view.stopped = true;
    clearTimeout(view.timer);
    badges.stop();
    if (view.detach) view.detach();
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
