// A tiny History-API router: routes are [regexp, view]; links with data-nav stay in the app.

const routes = [];
let onRoute = null;

export function route(pattern, view) {
  routes.push([pattern, view]);
}

export function start(handler) {
  onRoute = handler;
  window.addEventListener("popstate", () => dispatch());
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  dispatch();
}

export function navigate(path, { replace = false, state = null } = {}) {
  if (replace) history.replaceState(state, "", path);
  else history.pushState(state, "", path);
  dispatch();
}

function dispatch() {
  const path = decodeURI(location.pathname);
  for (const [pattern, view] of routes) {
    const match = path.match(pattern);
    if (match) {
      onRoute(view, match.slice(1), new URLSearchParams(location.search), history.state);
      return;
    }
  }
  onRoute(null, [], new URLSearchParams(location.search), null);
}
