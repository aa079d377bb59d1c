// Salon's web client: boot, the top bar, sign-in, and the routes to each page.

import { ApiError, get, post, setCsrf, userPath } from "./api.js";
import { clear, field, h, profileHref } from "./dom.js";
import { navigate, route, start } from "./router.js";
import { adminView } from "./views/admin.js";
import { hallwayView } from "./views/hallway.js";
import { newRoomView } from "./views/new-room.js";
import { notificationsButton, notificationsView, watchNotifications } from "./views/notifications.js";
import { profileView } from "./views/profile.js";
import { PlayerBar } from "./views/player-bar.js";
import { remoteReplayView, replayView } from "./views/replay.js";
import { remoteRoomView, roomView } from "./views/room.js";
import { Player } from "./room/player.js";
import { roomPageFor } from "./room/source.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
// The player bar lives outside <main>: pages come and go, the room keeps playing.
const dock = h("div", { class: "player-dock" });
main.after(dock);

export const app = {
  me: null,
  instance: { name: "Salon", open_registration: true },
  cleanup: null,
  player: new Player({
    nodeName: () => app.instance.name,
    bar: new PlayerBar(dock, {
      leave: () => app.player.leave(),
      dismiss: () => app.player.drop(),
      resume: () => app.player.pause(false),
    }),
  }),
  signOut: () => signOut(),
  setMe(me) {
    app.me = me;
    if (me && me.csrf_token) setCsrf(me.csrf_token);
    watchNotifications(me);
    drawTopbar();
  },
};

route(/^\/$/, hallwayView);
route(/^\/new$/, newRoomView);
route(/^\/rooms\/([^/]+)$/, roomView);
route(/^\/rooms\/([^/]+)\/replay$/, replayView);
route(/^\/remote-replay$/, remoteReplayView);
route(/^\/remote$/, remoteRoomView);
route(/^\/@(.+)$/, profileView);
route(/^\/admin$/, adminView);
route(/^\/notifications$/, notificationsView);

function show(view, params, query, state) {
  if (app.cleanup) {
    try { app.cleanup(); } catch (error) { console.warn(error); }
    app.cleanup = null;
  }
  window.scrollTo(0, 0);
  markCurrent();
  clear(main);
  if (!view) {
    document.title = `Not found · ${app.instance.name}`;
    main.append(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/" }, "Back to the hallway")));
    return;
  }
  if (!app.me) {
    authView(main);
    return;
  }
  app.cleanup = view(main, app, params, query, state) || null;
}

function drawTopbar() {
  clear(topbar);
  const brand = h("a", { class: "brand", href: "/" }, h("img", { src: "/static/icon.svg", alt: "" }),
    h("span", {}, app.instance.name));
  if (!app.me) {
    topbar.append(brand);
    return;
  }
  const input = h("input", {
    type: "search", name: "q", autocomplete: "off", spellcheck: "false",
    placeholder: "name or @user@node",
  });
  const message = h("p", { class: "search-message", role: "status" });
  const form = h("form", { class: "search", role: "search", onsubmit: (e) => search(e, input, message) },
    h("label", { for: "search-input", class: "visually-hidden" }, "Search"),
    input, h("button", { type: "submit", class: "ghost" }, "Go"), message);
  input.id = "search-input";
  const nav = h("nav", { class: "nav", "aria-label": "Main" },
    h("a", { href: "/", class: "navlink nav-hallway" }, "Hallway"),
    h("a", { href: "/new", class: "navlink" }, "Start a room"),
    h("a", { href: profileHref(app.me.handle), class: "navlink" }, "Profile"),
    notificationsButton(),
    app.me.is_admin ? h("a", { href: "/admin", class: "navlink" }, "Moderation") : null);
  topbar.append(brand, nav, form);
  markCurrent();
}

async function search(event, input, message) {
  event.preventDefault();
  message.textContent = "";
  let query = input.value.trim();
  if (!query) return;
  // A room link (this node's or another's) opens the room; remote ones through this node.
  const roomPage = /^https?:\/\//i.test(query) ? roomPageFor(query) : null;
  if (roomPage) {
    input.value = "";
    navigate(roomPage);
    return;
  }
  query = query.replace(/^@/, "");
  try {
    let profile;
    if (query.includes("@")) {
      profile = await get(`/api/lookup?acct=${encodeURIComponent("@" + query)}`);
    } else {
      profile = await get(userPath(query));
    }
    input.value = "";
    navigate(profileHref(profile.handle || profile.username || query));
  } catch (error) {
    message.textContent = error.status === 404
      ? `No one called ${query.includes("@") ? "@" + query : query} was found.`
      : error.message;
  }
}

function markCurrent() {
  for (const link of topbar.querySelectorAll(".navlink")) {
    const here = new URL(link.href).pathname === location.pathname;
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export async function signOut() {
  await app.player.leave();
  try { await post("/api/auth/signout"); } catch { /* the cookie is gone either way */ }
  app.setMe(null);
  navigate("/", { replace: true });
}

function authView(root) {
  document.title = app.instance.name;
  const username = h("input", { name: "username", autocomplete: "username", required: true,
    autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", required: true,
    autocomplete: "current-password" });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = async (event) => {
    event.preventDefault();
    const creating = event.submitter && event.submitter.value === "signup";
    error.textContent = "";
    try {
      const body = { username: username.value.trim(), password: password.value };
      const data = await post(creating ? "/api/auth/signup" : "/api/auth/signin", body);
      app.setMe({ ...data.user, csrf_token: data.csrf_token });
      navigate(location.pathname + location.search, { replace: true });
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
    }
  };
  const buttons = [h("button", { type: "submit", value: "signin", class: "primary" }, "Sign in")];
  if (app.instance.open_registration) {
    buttons.push(h("button", { type: "submit", value: "signup", class: "secondary" }, "Create account"));
  }
  root.append(h("section", { class: "auth" },
    h("h1", {}, `Welcome to ${app.instance.name}`),
    h("p", { class: "lede" }, "Live audio rooms. Drop in, listen, raise your hand to speak."),
    h("form", { class: "stack", onsubmit: submit },
      field("Username", username), field("Password", password, "At least 8 characters."),
      error, h("div", { class: "row" }, buttons)),
    app.instance.open_registration ? null
      : h("p", { class: "muted" }, "Registration is closed on this node; ask its operator for an account.")));
  username.focus();
}

async function boot() {
  try { app.instance = { ...app.instance, ...(await get("/api/instance")) }; } catch { /* defaults */ }
  try {
    app.setMe(await get("/api/me"));
  } catch {
    app.setMe(null);
  }
  start(show);
}

boot();
