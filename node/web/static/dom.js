// Building DOM nodes without innerHTML: user-supplied text is always a text node.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") for (const [k, v] of Object.entries(value)) el.style.setProperty(k, v);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
export function uid(prefix = "id") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled form field: <label for> + control. */
export function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : String(name || "?").slice(0, 2);
  return letters.toUpperCase();
}

/** A stable, pleasant hue for someone's avatar. */
export function hue(name) {
  let n = 0;
  for (const ch of String(name)) n = (n * 31 + ch.codePointAt(0)) % 360;
  return n;
}

export function avatar(name, size = "") {
  return h("span", { class: `avatar ${size}`, "aria-hidden": "true", style: { "--hue": hue(name) } },
    initials(name));
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A start time (epoch seconds, or an ISO 8601 string from federation) in the viewer's zone. */
export function formatWhen(when) {
  const date = typeof when === "number" ? new Date(when * 1000) : new Date(when);
  if (Number.isNaN(date.getTime())) return "";
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  if (sameDay) return `today at ${time}`;
  return `${date.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" })} at ${time}`;
}

export function timeZoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  } catch {
    return "local time";
  }
}

/** The node part of a handle or URL: "bob@b.example:8101" → "b.example:8101". */
export function nodeOf(handleOrUrl, fallback) {
  if (!handleOrUrl) return fallback;
  if (handleOrUrl.includes("://")) {
    try { return new URL(handleOrUrl).host; } catch { return fallback; }
  }
  const at = handleOrUrl.indexOf("@");
  return at >= 0 ? handleOrUrl.slice(at + 1) : fallback;
}

export function profileHref(handle) {
  return `/@${encodeURIComponent(handle).replace(/%40/g, "@").replace(/%3A/g, ":")}`;
}
