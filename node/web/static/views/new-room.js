// Start a room: title, description, who can join, now or later (in the viewer's time zone).

import { post } from "../api.js";
import { field, h, timeZoneName } from "../dom.js";
import { navigate } from "../router.js";

const MODES = [
  ["open", "Open", "Anyone can find and join it."],
  ["social", "Social", "Only people the hosts follow can join."],
  ["closed", "Closed", "Only people you invite, or who have the invite link."],
];

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function newRoomView(root, app) {
  document.title = `Start a room · ${app.instance.name}`;
  const title = h("input", { name: "title", required: true, maxlength: 200, autocomplete: "off" });
  const description = h("textarea", { name: "description", rows: 3, maxlength: 2000 });
  const soon = new Date(Date.now() + 60 * 60 * 1000);
  soon.setMinutes(0, 0, 0);
  const when = h("input", { type: "datetime-local", name: "when", value: localInputValue(soon),
    min: localInputValue(new Date()) });
  const whenField = field("Date and time", when, `Your time zone: ${timeZoneName()}.`);
  whenField.hidden = true;
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Start room");

  const radio = (name, value, label, hint, checked, onchange) => {
    const id = `${name}-${value}`;
    return h("div", { class: "choice" },
      h("input", { type: "radio", name, value, id, checked, onchange, "aria-describedby": `${id}-hint` }),
      h("label", { for: id }, label), h("p", { class: "hint", id: `${id}-hint` }, hint));
  };
  const schedule = (later) => {
    whenField.hidden = !later;
    when.required = later;
    submit.textContent = later ? "Schedule room" : "Start room";
  };

  const form = h("form", { class: "stack new-room", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const data = new FormData(form);
    const body = { title: title.value.trim(), description: description.value, join_mode: data.get("join_mode") };
    if (data.get("timing") === "later") {
      const start = new Date(when.value);
      if (Number.isNaN(start.getTime())) {
        error.textContent = "Choose a date and time.";
        return;
      }
      body.start_time = start.toISOString();
    }
    submit.disabled = true;
    try {
      const room = await post("/api/rooms", body);
      // Pressing Start room is the gesture that lets the host's audio start at once.
      navigate(`/rooms/${encodeURIComponent(room.id)}`, { state: { autoJoin: room.status === "live" } });
    } catch (err) {
      submit.disabled = false;
      error.textContent = err.message;
    }
  } },
  field("Title", title),
  field("Description", description, "Optional. What will you talk about?"),
  h("fieldset", {}, h("legend", {}, "Who can join"),
    MODES.map(([value, label, hint]) => radio("join_mode", value, label, hint, value === "open"))),
  h("fieldset", {}, h("legend", {}, "When"),
    radio("timing", "now", "Start now", "The room opens as soon as you press Start room.", true, () => schedule(false)),
    radio("timing", "later", "Schedule for later", "It shows as upcoming in your followers' hallways.", false,
      () => schedule(true)),
    whenField),
  error,
  h("div", { class: "row" }, submit, h("a", { href: "/", class: "button secondary" }, "Cancel")));

  root.append(h("h1", {}, "Start a room"), form);
  title.focus();
  return null;
}
