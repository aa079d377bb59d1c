// Recording in the room page (issue #14): the "Recording" indicator everyone sees, the
// notice before joining a recorded room, the line in the invitation to speak, and the
// host's Record toggle and the Mark button (a chapter title prompt). The node decides:
// PATCH /api/rooms/{id} {"record": bool} and POST /api/rooms/{id}/mark {"title"}.
import { api, post } from "../api.js";
import { h } from "../dom.js";

/** The indicator shown in the room's header while it is recorded. */
export function recordingIndicator(room) {
  if (!room || !room.recording || room.unknown) return null;
  return h("span", { class: "badge recording", role: "status", "aria-live": "polite", dataset: { key: "recording" } },
    "Recording");
}

/** Shown in the join area before audio starts. */
export function recordedNotice(room) {
  if (!room || !room.recording) return null;
  return h("p", { class: "hint recorded-notice", role: "note", dataset: { key: "recorded-notice" } },
    "This room is recorded. Joining means your voice may be in the replay.");
}

/** The line the invitation to speak carries. */
export function invitationNote(room) {
  if (!room || !room.recording) return null;
  return h("p", { class: "recorded-notice", role: "note" }, "This room is recorded: what you say on stage will be in the replay.");
}

/** Why the node stopped a recording, for the host (event `recording` with a reason). */
export function stopReason(message) {
  if (!message || message.recording !== false || !message.reason) return "";
  if (message.reason === "quota") return "Recording stopped: your replay storage quota is full. The room goes on.";
  if (message.reason === "disk_full") return "Recording stopped: the server's disk is full. The room goes on.";
  if (message.reason === "error") return "Recording stopped because of a server error. The room goes on.";
  return "";
}

/**
 * Host and moderator controls: Record (toggle, the host only) and Mark (while recording).
 * `button(label, key, onclick, extra, disabled)` is the page's button maker; `say` shows errors.
 */
export function recordingControls(room, you, { button, say, offline, remote }) {
  if (remote || !you || room.status !== "live") return [];
  const out = [];
  const path = `/api/rooms/${encodeURIComponent(room.id)}`;
  if (you.role === "host") {
    out.push(button(room.recording ? "Stop recording" : "Record", "record", async () => {
      say("");
      try {
        await api("PATCH", path, { record: !room.recording });
      } catch (error) {
        say(error.message);
      }
    }, "secondary", offline));
  }
  if (room.recording && (you.role === "host" || you.role === "moderator")) {
    out.push(button("Mark", "mark", async () => {
      const title = window.prompt("Chapter title");
      if (title === null) return;
      say("");
      try {
        await post(`${path}/mark`, { title });
      } catch (error) {
        say(error.message);
      }
    }, "secondary", offline));
  }
  return out;
}
