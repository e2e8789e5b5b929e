// The sandbox console: plain JavaScript over the JSON API under /api/ (no library, no build).
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes and children (strings become text, never HTML). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// `generation` changes with the reveal toggle: an answer to a request sent before it is
// dropped, so nothing asked for unmasked stays on screen once masked again (and back).
const state = { reveal: false, generation: 0, started: null, decisions: [], lastSeq: 0, customers: [], profile: null };

function revealQuery() { return state.reveal ? "reveal=true" : "reveal=false"; }

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const generation = state.generation;
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  // Answered under another reveal setting: the caller redraws with a fresh one.
  if (generation !== state.generation) return { status: 0, data: {}, stale: true };
  return { status: response.status, data };
}

function say(message) { $("#status").textContent = message || ""; }

function transitionBadge(decision) {
  if (!decision || !decision.transition) return el("span", { class: "transition" }, "—");
  return el("span", { class: `transition ${decision.transition}`, "data-transition": decision.transition }, decision.transition);
}

function value(v) { return typeof v === "string" ? v : JSON.stringify(v); }

function chips(object) {
  return Object.entries(object || {}).map(([k, v]) => el("span", { class: "chip" }, `${k}=${value(v)}`));
}

function customerLabel(c) {
  const phone = (c.identifiers || []).find((i) => i.type === "phone");
  const name = c.name || c.profile;
  return phone ? `${name} (${phone.value})` : name;
}

// ---- Views -------------------------------------------------------------------------------

const views = ["customers", "customer", "decisions", "outcomes", "rules", "try"];

function route() {
  // An in-page anchor (the skip link's #main) is not a view.
  if (location.hash && !location.hash.startsWith("#/")) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) target.focus();
    return;
  }
  const [, view = "customers", id] = location.hash.split("/");
  const shown = view === "customers" && id ? "customer" : (views.includes(view) ? view : "customers");
  for (const name of views) $(`#view-${name}`).hidden = name !== shown;
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.id === `nav-${shown === "customer" ? "customers" : shown}`;
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  say("");
  if (shown === "customers") loadCustomers();
  if (shown === "customer") loadCustomer(decodeURIComponent(id));
  if (shown === "decisions") renderDecisions();
  if (shown === "outcomes") loadOutcomes();
  if (shown === "rules") loadRules(false);
  if (shown === "try") loadTry(id ? decodeURIComponent(id) : null);
}

async function loadCustomers() {
  const { status, data, stale } = await api(`/api/customers?${revealQuery()}`);
  if (stale) return;
  if (status !== 200) return say(data.error ? data.error.message : `customers: HTTP ${status}`);
  state.customers = data.customers;
  $("#active-rule-names").textContent = data.rules.join(", ");
  const body = $("#customers tbody");
  if (data.customers.length === 0) {
    return body.replaceChildren(el("tr", { class: "loading" }, el("td", { colspan: "4" },
      "No customers yet: send a message from Try it, or start the sandbox without --no-demo.")));
  }
  body.replaceChildren(...data.customers.map((c) => el("tr", { "data-profile": c.profile },
    el("td", {}, el("a", { href: `#/customers/${encodeURIComponent(c.profile)}` }, c.name || c.profile)),
    el("td", {}, (c.identifiers || []).filter((i) => i.type !== "anonymous_id").map((i) => el("div", { class: "identifier" }, `${i.type}: ${i.value}`))),
    el("td", {}, chips(c.computed_traits)),
    el("td", { class: "decision" }, transitionBadge(c.decision), " ", el("span", { class: "rule" }, c.decision.rule)),
  )));
}

async function loadCustomer(profile) {
  state.profile = profile;
  const { status, data, stale } = await api(`/api/customers/${encodeURIComponent(profile)}?${revealQuery()}`);
  if (stale) return;
  if (status !== 200) return say(data.error ? data.error.message : `customer: HTTP ${status}`);
  $("#customer-name").textContent = customerLabel(data);
  const d = data.decision;
  $("#customer-decision").replaceChildren(transitionBadge(d), " by rule ", el("span", { class: "rule" }, d.rule),
    Object.keys(d.attributes).length ? el("div", {}, "attributes ", chips(d.attributes)) : "");
  $("#customer-explanation tbody").replaceChildren(...data.explanation.map((t) =>
    el("tr", {}, el("td", { class: "rule" }, t.rule), el("td", {}, t.outcome.replaceAll("_", " ")), el("td", {}, t.detail || ""))));
  $("#customer-identifiers").replaceChildren(...data.identifiers.map((i) => el("li", {}, `${i.type}: ${i.value}`)));
  $("#customer-try").href = `#/try/${encodeURIComponent(profile)}`;
  $("#customer-computed tbody").replaceChildren(...data.computed.map((t) => el("tr", { "data-trait": t.key },
    el("td", {}, el("div", { class: "rule" }, t.key), el("div", { class: "definition" }, t.definition)),
    el("td", { class: "trait-value" }, t.value === null ? el("em", {}, "no value") : value(t.value)),
    el("td", {}, t.counted.length
      ? el("button", { type: "button", class: "quiet counted-button", "aria-pressed": "false", "data-trait": t.key,
        title: "Mark these events in the timeline" }, `${t.counted.length} event${t.counted.length === 1 ? "" : "s"}`)
      : el("span", { class: "hint" }, "none")))));
  for (const button of document.querySelectorAll("#customer-computed .counted-button")) {
    const trait = data.computed.find((t) => t.key === button.dataset.trait);
    button.addEventListener("click", () => markCounted(button, trait));
  }
  $("#customer-traits tbody").replaceChildren(...Object.entries(data.traits).map(([k, v]) =>
    el("tr", { "data-trait": k }, el("td", { class: "rule" }, k), el("td", { class: "trait-value" }, value(v)))));
  $("#timeline").replaceChildren(...data.timeline.map((e) => el("li", { "data-message-id": e.message_id, "data-type": e.type },
    el("span", { class: "when" }, e.at.replace("T", " ").replace(/\.\d+Z$/, "Z")),
    el("span", { class: "kind" }, e.type), el("span", { class: "name" }, e.name),
    e.feeds.length ? el("div", { class: "feeds" }, "feeds ", e.feeds.map((k) => el("span", { class: "chip" }, k))) : null,
    e.outside_window_of.length ? el("div", { class: "feeds hint" }, "too old for ", e.outside_window_of.map((k) => el("span", { class: "chip" }, k)), " (outside its window)") : null,
    !e.feeds.length && !e.outside_window_of.length ? el("div", { class: "feeds hint" }, "feeds no trait") : null,
    el("details", {}, el("summary", {}, "message"), el("pre", {}, JSON.stringify(e.message, null, 2))))));
  if (data.events_total > data.timeline.length) {
    $("#timeline").append(el("li", { class: "hint" }, `and ${data.events_total - data.timeline.length} older events`));
  }
}

/** Marks (or unmarks) in the timeline the events a computed trait counts. */
function markCounted(button, trait) {
  const on = button.getAttribute("aria-pressed") !== "true";
  for (const other of document.querySelectorAll("#customer-computed .counted-button")) other.setAttribute("aria-pressed", "false");
  let first = null;
  for (const item of document.querySelectorAll("#timeline li[data-message-id]")) {
    const counted = on && trait.counted.includes(item.dataset.messageId);
    item.classList.toggle("counted", counted);
    if (counted && !first) first = item;
  }
  button.setAttribute("aria-pressed", String(on));
  if (first) first.scrollIntoView({ block: "nearest" });
}

// ---- Decisions, live ---------------------------------------------------------------------

async function pollDecisions() {
  try {
    const { status, data } = await api(`/api/decisions?after=${state.lastSeq}&${revealQuery()}`);
    if (status === 200 && data.started_ms !== state.started) {
      // A sandbox started since (or the first answer): its numbering began again.
      const restarted = state.started !== null;
      state.started = data.started_ms;
      state.decisions = []; state.lastSeq = 0;
      if (restarted) { setTimeout(pollDecisions, 0); return; }
    }
    if (status === 200 && data.decisions.length) {
      state.decisions.push(...data.decisions.filter((d) => d.seq > state.lastSeq));
      state.decisions = state.decisions.slice(-1000);
      state.lastSeq = state.decisions[state.decisions.length - 1].seq;
    }
    if (status === 200) {
      $("#decision-count").textContent = String(state.lastSeq);
      if (!$("#view-decisions").hidden) renderDecisions();
    }
  } catch (_) { /* the sandbox stopped or restarts: try again */ }
  setTimeout(pollDecisions, 1000);
}

// Where a decision's traits came from: the trait store (sandbox --trait-store), the Profile
// API, or nowhere (inline traits, a withheld caller, a fallback).
function traitsFrom(d) {
  if (d.traits_from === "store") return "trait store";
  if (d.traits_from === "store+profile_api") return "trait store + Profile API";
  return d.status === 200 && d.profile_found ? "Profile API" : "—";
}

function renderDecisions() {
  if (state.decisions.length === 0) {
    return $("#decisions tbody").replaceChildren(el("tr", { class: "loading" }, el("td", { colspan: "8" },
      "No decisions yet: send one from Try it, or with one of the curl commands the sandbox printed.")));
  }
  const rows = state.decisions.slice().reverse().map((d) => el("tr", { "data-seq": d.seq },
    el("td", {}, d.at.slice(11, 23)),
    el("td", {}, d.profile ? el("a", { href: `#/customers/${encodeURIComponent(d.profile)}` }, d.name || d.profile) : (d.status === 200 ? "not in Segment" : "—"),
      el("div", { class: "hint" }, d.customer || "")),
    el("td", {}, d.status === 200 ? transitionBadge(d) : el("span", { class: "error" }, `refused (${d.status})`)),
    el("td", { class: "rule" }, d.status === 200 ? d.rule : (d.error || "")),
    el("td", {}, chips(d.attributes)),
    el("td", { class: d.fallback ? "fallback" : "" }, d.fallback ? "yes" : "no"),
    el("td", { class: "traits-from" }, traitsFrom(d)),
    el("td", {}, `${d.latency_ms.toFixed(1)} ms`)));
  $("#decisions tbody").replaceChildren(...rows);
}

// ---- Outcomes ----------------------------------------------------------------------------

async function loadOutcomes() {
  const { status, data } = await api("/api/outcomes");
  if (status !== 200) return say(`outcomes: HTTP ${status}`);
  const minutes = Math.round(data.escalation_window_secs / 60);
  $("#escalation-window").textContent = minutes === 60 ? "an hour" : `${minutes} minutes`;
  const rows = data.outcomes.map((o) => el("tr", { "data-rule": o.rule, "data-arm": o.arm },
    el("td", { class: "rule" }, o.rule),
    el("td", {}, o.arm === "none" ? "—" : o.arm),
    el("td", { class: "decisions" }, String(o.decisions)),
    el("td", {}, String(o.customers)),
    el("td", {}, String(o.bot_routed)),
    el("td", { class: "escalations" }, o.bot_routed ? `${o.escalations} (${Math.round(100 * o.escalations / o.bot_routed)}%)` : "—"),
    el("td", {}, o.mean_handle_time_secs == null ? "—" : `${Math.round(o.mean_handle_time_secs)} s`),
    el("td", {}, chips(o.sentiment))));
  $("#outcomes tbody").replaceChildren(...rows);
  showShadow(data.shadow);
}

// The shadow set's disagreements, when one is judged beside the rules.
function showShadow(shadow) {
  $("#shadow-outcomes").hidden = !shadow;
  if (!shadow) return;
  const rate = shadow.decisions ? Math.round(100 * shadow.disagreements / shadow.decisions) : 0;
  const moves = Object.entries(shadow.moves).map(([move, n]) => `${move}: ${n}`).join(", ");
  $("#shadow-summary").textContent = `Judged on ${shadow.decisions} decisions; disagreed on ${shadow.disagreements} (${rate}%)${moves ? ` — ${moves}` : ""}. It never changed an answer.`;
  const rows = shadow.examples.map((e) => el("tr", {},
    el("td", {}, e.customer || "—"),
    el("td", {}, `${e.transition} (${e.rule})`),
    el("td", { class: "shadow" }, `${e.shadow_transition} (${e.shadow_rule})`)));
  $("#shadow-examples tbody").replaceChildren(...rows);
}

// ---- Rules workbench ---------------------------------------------------------------------

async function loadRules(force) {
  const { status, data } = await api("/api/rules");
  if (status !== 200) return say(`rules: HTTP ${status}`);
  $("#rules-source").textContent = data.source;
  $("#rules-active").textContent = data.rules.join(", ");
  $("#rules-file").textContent = data.file || "no file (ROUTING_RULES)";
  $("#rules-save").disabled = !data.file;
  const editor = $("#rules-editor");
  if (force || !editor.dataset.touched) {
    editor.value = data.text;
    delete editor.dataset.touched;
  }
}

/** The offset in the editor's text that an error names: a document line and column, or a
 *  line and column inside a rule's condition or attribute (counted in the decoded string, so
 *  escapes such as \" and \n are walked over as the compiler read them). */
function errorOffset(text, error) {
  if (error.line == null) return null;
  if (!error.rule) return lineColumn(text, 0, error.line, error.column, false);
  const name = new RegExp(`"name"\\s*:\\s*${JSON.stringify(error.rule).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`);
  const nameAt = text.search(name);
  if (nameAt < 0) return null;
  const key = error.what === "condition" ? "when" : (error.what || "").replace(/^attribute "(.*)"$/, "$1");
  // The key may come before or after "name" in the rule's object.
  const objectAt = text.lastIndexOf("{", nameAt);
  const keyAt = text.indexOf(`"${key}"`, objectAt);
  if (keyAt < 0) return null;
  const open = text.indexOf('"', text.indexOf(":", keyAt + key.length + 2) + 1);
  return open < 0 ? null : lineColumn(text, open + 1, error.line, error.column, true);
}

/** The raw offset of (line, column), both from 1, counting from `start`; in a JSON string
 *  (`escaped`) an escape is one character and `\n` starts a line. */
function lineColumn(text, start, line, column, escaped) {
  let at = start, l = 1, c = 1;
  while (at < text.length && !(l === line && c === column)) {
    const ch = text[at];
    if (escaped && ch === '"') break;
    if (escaped && ch === "\\") {
      const next = text[at + 1];
      at += next === "u" ? 6 : 2;
      if (next === "n") { l += 1; c = 1; } else c += 1;
      continue;
    }
    at += 1;
    if (ch === "\n") { l += 1; c = 1; } else c += 1;
  }
  return at;
}

function showRulesError(error) {
  const place = [error.rule ? `rule "${error.rule}"` : "the document", error.what,
    error.line != null ? `line ${error.line}, column ${error.column}` : null].filter(Boolean).join(", ");
  $("#rules-result").replaceChildren(el("div", { class: "problem", id: "rules-error" },
    el("strong", {}, `Not applied: ${place}`), el("pre", {}, error.message)));
  const editor = $("#rules-editor");
  const offset = errorOffset(editor.value, error);
  if (offset != null) { editor.focus(); editor.setSelectionRange(offset, offset + 1); }
}

async function rulesAction(kind) {
  const text = $("#rules-editor").value;
  const save = kind === "apply" && $("#rules-save").checked;
  const { status, data } = await api(`/api/rules/${kind}`, { text, save, reveal: state.reveal });
  $("#dry-run").hidden = true;
  if (status !== 200 && data.applied) {
    $("#rules-result").replaceChildren(el("div", { class: "problem", id: "rules-error" },
      el("strong", {}, "Applied, but not saved"), el("pre", {}, data.error.message)));
    return loadRules(true);
  }
  if (status !== 200) return showRulesError(data.error || { message: `HTTP ${status}` });
  const summary = `Compiles: ${data.rules.length} rule(s): ${data.rules.join(", ")}; transitions ${data.transitions.join(", ")}.`;
  if (kind === "check") {
    $("#rules-result").replaceChildren(el("div", { class: "ok", id: "rules-ok" }, summary));
  } else if (kind === "dry-run") {
    const moves = Object.entries(data.moves);
    $("#rules-result").replaceChildren(el("div", { class: "ok", id: "rules-ok" }, summary, el("br"),
      moves.length ? `Would move: ${moves.map(([m, n]) => `${n} customer${n === 1 ? "" : "s"} ${m}`).join("; ")}.` : "Nobody would change transition."));
    $("#dry-run tbody").replaceChildren(...data.customers.map((c) => el("tr", { class: c.moved ? "moved" : "", "data-profile": c.profile, "data-moved": String(c.moved) },
      el("td", {}, c.name || c.profile),
      el("td", { class: "before" }, transitionBadge(c.before), " ", el("span", { class: "rule" }, c.before.rule)),
      el("td", { class: "after" }, transitionBadge(c.after), " ", el("span", { class: "rule" }, c.after.rule)))));
    $("#dry-run").hidden = false;
  } else {
    $("#rules-result").replaceChildren(el("div", { class: "ok", id: "rules-ok" },
      `Applied: the next decision uses ${data.rules.join(", ")}.`, data.saved ? ` Saved to ${data.saved}.` : " The file on disk is unchanged."));
    delete $("#rules-editor").dataset.touched;
    loadRules(true);
  }
}

// ---- Try it ------------------------------------------------------------------------------

async function loadTry(profile) {
  const { status, data } = await api(`/api/customers?${revealQuery()}`);
  if (status !== 200) return;
  state.customers = data.customers;
  const select = $("#try-customer");
  const keep = profile || select.value;
  const chosen = data.customers.some((c) => c.profile === keep) ? keep : (data.customers[0] || {}).profile;
  select.replaceChildren(...data.customers.map((c) => el("option", { value: c.profile, selected: c.profile === chosen }, customerLabel(c))),
    el("option", { value: "" }, "— the phone number below —"));
  renderTryCustomer();
}

function tryWho() {
  const phone = $("#try-phone").value.trim();
  return phone ? { phone, reveal: state.reveal } : { profile: $("#try-customer").value, reveal: state.reveal };
}

async function renderTryCustomer(profile) {
  const id = profile || $("#try-customer").value;
  const box = $("#try-customer-now");
  if (!id) return box.replaceChildren(el("p", { class: "hint" }, "Pick a customer, or send something for a new number."));
  const { status, data } = await api(`/api/customers/${encodeURIComponent(id)}?${revealQuery()}`);
  if (status !== 200) return box.replaceChildren(el("p", { class: "hint" }, "No profile yet."));
  box.replaceChildren(
    el("p", { id: "try-decision" }, customerLabel(data), ": ", transitionBadge(data.decision), " by ", el("span", { class: "rule" }, data.decision.rule)),
    el("div", { id: "try-traits" }, chips(Object.fromEntries(data.computed.filter((t) => t.value !== null).map((t) => [t.key, t.value])))),
    el("p", {}, el("a", { href: `#/customers/${encodeURIComponent(id)}` }, "Open the timeline")));
}

/** One line on what a test did, then the answers. */
function summarise(kind, status, data) {
  if (status !== 200) return `Not sent (HTTP ${status}): ${data.error ? data.error.message : ""}`;
  if (kind === "message") {
    const a = data.answer || {};
    return a.transition
      ? `route-decision answered ${data.status}: ${a.transition} by rule ${a.rule}${a.fallback ? " (fallback)" : ""}`
      : `route-decision answered ${data.status}: ${a.error ? a.error.message : ""}`;
  }
  if (kind === "page-view") return data.profile ? `Page view stored for ${data.profile}.` : "Page view sent.";
  return `${data.ok ? "Wrap-up delivered" : "Wrap-up not delivered"}: ${data.posts.map((p) => `${p.event} ${p.status}`).join(", ")} (task ${data.task_sid}).`;
}

async function send(kind) {
  const body = tryWho();
  if (kind === "message") Object.assign(body, { channel: $("#try-channel").value, explain: true });
  if (kind === "page-view") body.path = $("#try-path").value;
  if (kind === "wrap-up") Object.assign(body, { channel: $("#try-wrap-channel").value, topic: $("#try-topic").value, sentiment: $("#try-sentiment").value });
  const { status, data } = await api(`/api/try/${kind}`, body);
  $("#try-summary").textContent = summarise(kind, status, data);
  $("#try-result").textContent = JSON.stringify(data, null, 2);
  const profile = data.profile || body.profile;
  if (profile) {
    await loadTry(profile);
    await renderTryCustomer(profile);
  }
}

// ---- Start -------------------------------------------------------------------------------

function start() {
  $("#reveal").addEventListener("change", (event) => {
    state.reveal = event.target.checked;
    state.generation += 1;
    state.decisions = []; state.lastSeq = 0;
    route();
  });
  $("#rules-editor").addEventListener("input", (event) => { event.target.dataset.touched = "yes"; });
  $("#rules-check").addEventListener("click", () => rulesAction("check"));
  $("#rules-dry-run").addEventListener("click", () => rulesAction("dry-run"));
  $("#rules-apply").addEventListener("click", () => rulesAction("apply"));
  $("#rules-reset").addEventListener("click", () => { $("#rules-result").replaceChildren(); $("#dry-run").hidden = true; loadRules(true); });
  $("#try-form").addEventListener("submit", (event) => event.preventDefault());
  $("#try-customer").addEventListener("change", () => { $("#try-phone").value = ""; renderTryCustomer(); });
  $("#try-message").addEventListener("click", () => send("message"));
  $("#try-page").addEventListener("click", () => send("page-view"));
  $("#try-wrap-up").addEventListener("click", () => send("wrap-up"));
  window.addEventListener("hashchange", route);
  route();
  pollDecisions();
}

start();
