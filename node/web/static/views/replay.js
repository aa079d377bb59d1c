// The replay page: an <audio> player that seeks by HTTP range requests, speed, the
// precomputed waveform (click to seek), the speakers' timeline, chapters, the kept chat,
// Download, and for the host Delete replay and Trim. Remote replays play through our node.

import { api, get, post } from "../api.js";
import { h } from "../dom.js";
import { navigate } from "../router.js";

const SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2];

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hours ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function replayView(root, app, params) {
  return mount(root, app, `/api/rooms/${encodeURIComponent(params[0])}/replay`);
}

export function remoteReplayView(root, app, params, query) {
  return mount(root, app, `/api/remote-replay?url=${encodeURIComponent(query.get("url") || "")}`);
}

function mount(root, app, source) {
  document.title = `Replay · ${app.instance.name}`;
  const status = h("p", { class: "muted", role: "status" }, "Loading the replay…");
  root.append(status);
  let stopped = false;
  let cleanup = () => {};
  get(source).then((doc) => {
    if (stopped) return;
    status.remove();
    cleanup = draw(root, app, doc, source);
  }).catch((error) => {
    if (!stopped) status.textContent = `Cannot play this replay: ${error.message}`;
  });
  return () => { stopped = true; cleanup(); };
}

function draw(root, app, doc, source) {
  document.title = `Replay: ${doc.title} · ${app.instance.name}`;
  const audio = h("audio", { controls: true, preload: "metadata", src: doc.audio, class: "replay-audio" });
  audio.setAttribute("aria-label", "Replay");
  const seek = (seconds) => {
    audio.currentTime = Math.max(0, seconds);
    audio.play().catch(() => {});
  };
  window.salonDebug.replay = audio;

  const speed = h("select", { id: "replay-speed", onchange: () => { audio.playbackRate = Number(speed.value); } },
    SPEEDS.map((v) => h("option", { value: String(v), selected: v === 1 }, `${v}×`)));
  const speedField = h("div", { class: "field inline" }, h("label", { for: "replay-speed" }, "Speed"), speed);

  const canvas = h("canvas", { class: "waveform", width: 1000, height: 80, role: "img" });
  canvas.setAttribute("aria-label", "Waveform");
  const duration = () => (Number.isFinite(audio.duration) && audio.duration) || doc.duration || 0;
  let peaks = doc.peaks || [];
  const paint = () => paintWaveform(canvas, peaks, duration() ? audio.currentTime / duration() : 0);
  let peaksTimer = null;
  const waitForPeaks = () => {  // null: the node is still decoding the waveform
    peaksTimer = setTimeout(() => get(source).then((fresh) => {
      if (fresh.peaks) { peaks = fresh.peaks; paint(); } else waitForPeaks();
    }).catch(() => {}), 2000);
  };
  if (doc.peaks === null) waitForPeaks();
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * duration());
  });
  audio.addEventListener("timeupdate", paint);
  audio.addEventListener("loadedmetadata", paint);

  const speakers = h("ul", { class: "replay-list" }, (doc.speakers || []).map((span) =>
    h("li", {}, h("button", { type: "button", class: "ghost", onclick: () => seek(span.start) },
      `${span.user} ${clock(span.start)}–${clock(span.end)}`))));
  speakers.setAttribute("aria-label", "Speakers timeline");
  const chapters = h("ol", { class: "replay-list" }, (doc.chapters || []).map((c) =>
    h("li", {}, h("button", { type: "button", class: "ghost", onclick: () => seek(c.at) },
      `${clock(c.at)} ${c.title}`))));
  chapters.setAttribute("aria-label", "Chapters");

  const parts = [
    h("div", { class: "page-head" }, h("h1", {}, doc.title)),
    h("p", { class: "muted" }, doc.host ? `Hosted by ${doc.host} · ${clock(doc.duration)}` : clock(doc.duration)),
    audio, speedField, canvas,
    h("h2", {}, "Speakers"), speakers,
    h("h2", {}, "Chapters"), (doc.chapters || []).length ? chapters : h("p", { class: "muted" }, "No chapters."),
  ];
  if (doc.chat && doc.chat.length) {
    const chat = h("ol", { class: "replay-list" }, doc.chat.map((m) =>
      h("li", {}, h("button", { type: "button", class: "ghost", "aria-label": `Play from ${clock(m.at)}`,
        onclick: () => seek(m.at) }, clock(m.at)),
        ` ${m.user}: ${m.text}`)));
    chat.setAttribute("aria-label", "Chat");
    parts.push(h("h2", {}, "Chat"), chat);
  }
  if (doc.download) parts.push(h("p", {}, h("a", { href: doc.download, download: "", class: "button" }, "Download")));
  if (doc.can_edit) parts.push(hostTools(app, doc));
  root.append(...parts);
  paint();
  return () => { clearTimeout(peaksTimer); audio.pause(); audio.removeAttribute("src"); audio.load(); };
}

function hostTools(app, doc) {
  const message = h("p", { role: "status", class: "muted" });
  const start = h("input", { type: "number", min: "0", step: "0.1", value: "0", id: "trim-start" });
  const end = h("input", { type: "number", min: "0", step: "0.1", value: String(doc.duration), id: "trim-end" });
  const base = `/api/rooms/${encodeURIComponent(doc.room)}/replay`;
  const trim = h("form", { class: "trim", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await post(`${base}/trim`, { start: Number(start.value), end: Number(end.value) });
      navigate(`/rooms/${encodeURIComponent(doc.room)}/replay`, { replace: true });
    } catch (error) { message.textContent = error.message; }
  } },
  h("label", { for: "trim-start" }, "Trim start (seconds)"), start,
  h("label", { for: "trim-end" }, "Trim end (seconds)"), end,
  h("button", { type: "submit" }, "Trim"));
  trim.setAttribute("aria-label", "Trim");
  const remove = h("button", { type: "button", class: "danger", onclick: async () => {
    if (!window.confirm("Delete this replay for everyone? This cannot be undone.")) return;
    try {
      await api("DELETE", base);
      navigate("/");
    } catch (error) { message.textContent = error.message; }
  } }, "Delete replay");
  return h("section", { class: "replay-host" }, h("h2", {}, "Host tools"), trim, remove, message);
}

function paintWaveform(canvas, peaks, progress) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const n = peaks.length || 1;
  const style = getComputedStyle(canvas);
  for (let i = 0; i < peaks.length; i += 1) {
    const x = (i / n) * width;
    const bar = Math.max(1, peaks[i] * height);
    ctx.fillStyle = i / n <= progress ? style.getPropertyValue("--accent") || "#3b5bdb" : "#9aa3b5";
    ctx.fillRect(x, (height - bar) / 2, Math.max(1, width / n - 0.5), bar);
  }
}
