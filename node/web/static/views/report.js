// The "More actions" menu of a profile or a room with its Report item, and the report
// dialog (Reason, Comment, Send report). Reports go to this node's moderation desk; for
// someone on another node the reporter may also send it on there (without their name).

import { ApiError, post } from "../api.js";
import { field, h, uid } from "../dom.js";

const REASONS = [
  ["spam", "Spam"],
  ["harassment", "Harassment"],
  ["hate", "Hate"],
  ["illegal", "Illegal content"],
  ["other", "Something else"],
];

/** TARGET: a handle or a room URL; REMOTE: it lives on another node; WHAT: shown in the dialog. */
export function reportMenu(target, what, remote) {
  const menuId = uid("more");
  const items = h("div", { class: "more-menu", id: menuId, role: "menu", hidden: true });
  const toggle = h("button", {
    type: "button", class: "ghost more-toggle", "aria-haspopup": "menu", "aria-expanded": "false",
    "aria-controls": menuId,
    onclick: () => setOpen(items.hidden),
  }, "More actions");
  function setOpen(open) {
    items.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) items.querySelector("[role=menuitem]")?.focus();
  }
  items.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { setOpen(false); toggle.focus(); }
  });
  items.append(h("button", {
    type: "button", role: "menuitem", class: "ghost",
    onclick: () => { setOpen(false); openReportDialog(target, what, remote, toggle); },
  }, "Report"));
  return h("div", { class: "more" }, toggle, items);
}

export function openReportDialog(target, what, remote, returnFocus) {
  const reason = h("select", { name: "category", required: true },
    REASONS.map(([value, label]) => h("option", { value }, label)));
  const comment = h("textarea", { name: "comment", rows: 4, maxlength: 1000 });
  const forward = remote
    ? h("input", { type: "checkbox", name: "forward", id: uid("fwd"), checked: true }) : null;
  const status = h("p", { class: "form-error", role: "alert" });
  const titleId = uid("report-h");
  const dialog = h("dialog", { class: "report-dialog", "aria-labelledby": titleId });
  const close = () => { dialog.close(); dialog.remove(); returnFocus?.focus(); };
  const send = h("button", { type: "submit", class: "primary" }, "Send report");
  const form = h("form", {
    class: "stack",
    onsubmit: async (event) => {
      event.preventDefault();
      send.disabled = true;
      status.textContent = "";
      try {
        await post("/api/reports", {
          target, category: reason.value, comment: comment.value, forward: Boolean(forward?.checked),
        });
        form.replaceChildren(
          h("p", { role: "status" }, "Thank you. The moderators of this node will look at your report."),
          h("div", { class: "row" }, h("button", { type: "button", class: "primary", onclick: close }, "Done")));
        form.querySelector("button")?.focus();
      } catch (error) {
        send.disabled = false;
        status.textContent = error instanceof ApiError ? error.message : String(error);
      }
    },
  },
  field("Reason", reason),
  field("Comment", comment, "Optional. What happened? At most 1000 characters."),
  forward ? h("div", { class: "field check" }, forward,
    h("label", { for: forward.id }, "Also send it to their node (without your name)")) : null,
  status,
  h("div", { class: "row" }, send,
    h("button", { type: "button", class: "secondary", onclick: close }, "Cancel")));
  dialog.append(h("h2", { id: titleId }, `Report ${what}`), form);
  dialog.addEventListener("cancel", (event) => { event.preventDefault(); close(); });
  document.body.append(dialog);
  dialog.showModal();
  reason.focus();
}
