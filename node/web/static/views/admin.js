// The moderation desk at /admin (admins only: the node answers others 403): reports with their
// context and actions (Resolve, Suspend, Limit), domain policies, and the audit log.

import { ApiError, api, get, post } from "../api.js";
import { clear, field, h, uid } from "../dom.js";

const sections = [["reports", "Reports"], ["domains", "Domains"], ["audit", "Audit log"]];
let main = null;
let current = "reports";
let filter = "open";
const panel = h("section", { class: "desk-panel", "aria-live": "polite" });
const notice = h("p", { class: "form-error", role: "alert" });

export function adminView(root, app) {
  document.title = `Moderation desk · ${app.instance.name}`;
  main = h("div", { class: "desk" });
  root.append(main);
  draw();
  return () => { main = null; };
}

function tabs() {
  return h("nav", { class: "desk-tabs", "aria-label": "Moderation desk" },
    sections.map(([key, label]) => h("button", {
      type: "button", class: "ghost", "aria-pressed": String(key === current),
      onclick: () => { current = key; draw(); },
    }, label)));
}

async function act(promise) {
  notice.textContent = "";
  try {
    await promise;
  } catch (error) {
    notice.textContent = error instanceof ApiError ? error.message : String(error);
  }
  await draw();
}

function reportCard(r) {
  const titleId = uid("report");
  const note = h("textarea", { name: "note", rows: 2, maxlength: 1000 });
  const room = r.context && r.context.room;
  const speakers = (r.context && r.context.speakers) || [];
  const from = r.remote ? `Forwarded by the node ${r.origin} (reporter not shared)` : `Reported by ${r.reporter}`;
  const actions = [];
  if (r.status === "open") {
    actions.push(h("button", { type: "button", class: "primary",
      onclick: () => act(post(`/api/admin/reports/${r.id}/resolve`, { note: note.value })) }, "Resolve"));
  }
  if (r.target_user && !r.target_suspended) {
    actions.push(h("button", { type: "button", class: "danger",
      onclick: () => act(post(`/api/admin/accounts/${encodeURIComponent(r.target_user)}/suspend`,
        { note: note.value || `report ${r.id}` })) }, "Suspend"));
  }
  if (r.target_user && r.target_local === false) {
    actions.push(h("button", { type: "button", class: "secondary",
      onclick: () => act(post(`/api/admin/accounts/${encodeURIComponent(r.target_user)}/limit`,
        { note: note.value || `report ${r.id}` })) }, "Limit"));
  }
  return h("article", { class: "report card", "aria-labelledby": titleId },
    h("h3", { id: titleId }, `Report ${r.id}: ${r.category} · ${r.target_user || r.target}`),
    h("p", { class: "card-meta" },
      h("span", { class: `badge ${r.status === "open" ? "live" : "ended"}` }, r.status),
      r.remote ? h("span", { class: "badge" }, "Remote") : null,
      r.target_suspended ? h("span", { class: "badge" }, "Suspended") : null),
    h("p", { class: "muted" }, from),
    r.comment ? h("blockquote", {}, r.comment) : h("p", { class: "muted" }, "No comment."),
    room ? h("p", {}, "Room: ", h("a", { href: room.uri }, room.title || room.uri),
      speakers.length ? ` · speakers: ${speakers.join(", ")}` : "") : null,
    r.note ? h("p", {}, `Note: ${r.note}`) : null,
    r.status === "open" || actions.length ? field(`Note for report ${r.id}`, note) : null,
    h("div", { class: "row" }, actions));
}

async function drawReports() {
  const show = h("select", { name: "status", onchange: () => { filter = show.value; draw(); } },
    [["open", "Open"], ["resolved", "Resolved"], ["", "All"]].map(([value, label]) =>
      h("option", { value, selected: value === filter }, label)));
  const data = await get(`/api/admin/reports${filter ? `?status=${filter}` : ""}`);
  clear(panel, h("h2", {}, "Reports"), field("Show", show),
    data.reports.length ? data.reports.map(reportCard) : h("p", { class: "muted" }, "No reports here."));
}

async function drawDomains() {
  const domain = h("input", { name: "domain", autocomplete: "off", spellcheck: "false", required: true });
  const policy = h("select", { name: "policy" },
    [["suspend", "Suspend (no federation)"], ["limit", "Limit (follows need approval)"],
      ["allow", "Allow (allowlist mode)"]].map(([value, label]) => h("option", { value }, label)));
  const data = await get("/api/admin/domains");
  clear(panel, h("h2", {}, "Domains"),
    h("form", { class: "stack", onsubmit: (e) => { e.preventDefault();
      act(post("/api/admin/domains", { domain: domain.value, policy: policy.value })); } },
    field("Domain", domain), field("Policy", policy),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save policy"))),
    data.domains.length ? h("ul", { class: "domain-list" }, data.domains.map((d) => h("li", {},
      h("strong", {}, d.domain), ` ${d.policy} · ${d.follows} follow(s)`,
      h("button", { type: "button", class: "ghost", "aria-label": `Remove ${d.domain}`,
        onclick: () => act(api("DELETE", `/api/admin/domains/${encodeURIComponent(d.domain)}`)) },
      "Remove"))))
      : h("p", { class: "muted" }, "No domain policies."));
}

async function drawAudit() {
  const data = await get("/api/admin/audit");
  clear(panel, h("h2", {}, "Audit log"),
    data.audit.length ? h("ol", { class: "audit" }, data.audit.map((e) => h("li", {},
      h("time", {}, new Date(e.created_at * 1000).toLocaleString()), " ",
      h("strong", {}, e.admin), ` ${e.action} ${e.target}`, e.note ? ` — ${e.note}` : "")))
      : h("p", { class: "muted" }, "Nothing yet."));
}

async function draw() {
  if (!main) return;
  clear(main, h("h1", {}, "Moderation desk"), tabs(), notice, panel);
  try {
    if (current === "reports") await drawReports();
    else if (current === "domains") await drawDomains();
    else await drawAudit();
  } catch (error) {
    notice.textContent = error instanceof ApiError ? error.message : String(error);
  }
}
