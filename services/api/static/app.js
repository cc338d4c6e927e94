// caseledger dashboard: plain JavaScript against the HTTP API, no build step, no CDN.
// Everything a case shows (labels, transitions, fields, columns) comes from its case type.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = {
  key: sessionStorage.getItem("caseledger-key"),
  language: localStorage.getItem("caseledger-language") || "en",
  cursor: null, selected: null, current: null, pending: null,
  types: [], documents: new Map(), queues: new Set(),
};
const DEFAULT_COLUMNS = ["title", "case_type", "status", "priority", "queue", "assignee", "updated_at"];
const HEADINGS = {
  title: "Title", case_type: "Case type", status: "Status", priority: "Priority", queue: "Queue",
  assignee: "Assignee", party_id: "Party", opened_at: "Opened", updated_at: "Updated",
  sla_breaches: "SLA missed",
};

// -- talking to the API ------------------------------------------------------------------

class ApiError extends Error {
  constructor(body, fallback) {
    super(body?.detail ?? fallback);
    this.hint = body?.hint;
    this.problems = body?.problems ?? [];
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, "Accept-Language": state.language };
  if (options.body) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { ...options, headers });
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    if (answer.status === 401) signOut();
    throw new ApiError(body, `${answer.status} ${answer.statusText}`);
  }
  return body;
}

const send = (path, method, body) => api(path, { method, body: JSON.stringify(body) });

function showError(error) {
  const banner = $("#error");
  banner.replaceChildren();
  banner.hidden = !error;
  if (!error) return;
  banner.append(text("strong", String(error.message ?? error)));
  if (error.hint) banner.append(text("div", `Hint: ${error.hint}`, "hint"));
  if (error.problems?.length) {
    const list = document.createElement("ul");
    list.append(...error.problems.map((p) => text("li", p)));
    banner.append(list);
  }
}

const element = (tag, properties = {}) => Object.assign(document.createElement(tag), properties);

function text(tag, value, className) {
  const node = document.createElement(tag);
  node.textContent = value ?? "—";
  if (className) node.className = className;
  return node;
}

const label = (labels, fallback) => labels?.[state.language] ?? labels?.en ?? fallback;
const isMoney = (value) => value && typeof value === "object" && "amount" in value && "currency" in value;
const show = (value) => isMoney(value) ? `${value.amount} ${value.currency}`
  : typeof value === "object" && value !== null ? JSON.stringify(value) : value;
const canonical = (v) => Array.isArray(v) ? v.map(canonical)
  : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])])) : v;
const same = (a, b) => JSON.stringify(canonical(a ?? null)) === JSON.stringify(canonical(b ?? null));
const withoutBlanks = (values) => Object.fromEntries(Object.entries(values).filter(([, v]) => v !== null));

async function checkHealth() {
  const pill = $("#health");
  try {
    // Without a key /health only says ok or degraded; with one it names what is down.
    const headers = state.key ? { Authorization: `Bearer ${state.key}` } : {};
    const body = await (await fetch("/health", { headers })).json();
    const down = Object.entries(body.components ?? {}).filter(([, c]) => !c.ok).map(([n]) => n);
    const up = body.status === "ok";
    pill.textContent = up ? "database and broker up" : `down: ${down.join(", ") || "database or broker"}`;
    pill.className = up ? "pill ok" : "pill bad";
  } catch {
    pill.textContent = "API unreachable";
    pill.className = "pill bad";
  }
}

// -- case types and the fields they declare ----------------------------------------------

async function loadTypes() {
  state.types = await api("/case-types");
  for (const select of document.querySelectorAll("select.case-types")) {
    const any = select.form.id === "filters";
    const chosen = select.value;
    select.replaceChildren(...(any ? [new Option("any", "")] : []));
    for (const t of state.types.filter((t) => any || t.current_version)) {
      select.append(new Option(t.label, t.name));
    }
    select.value = chosen || (any ? "" : select.options[0]?.value ?? "");
  }
  await renderOpenFields();
}

async function documentOf(name, version) {
  const key = `${name}@${version}`;
  if (!state.documents.has(key)) {
    state.documents.set(key, (await api(`/case-types/${name}/versions/${version}`)).document);
  }
  return state.documents.get(key);
}

function currentDocument(name) {
  const chosen = state.types.find((t) => t.name === name);
  return chosen?.current_version ? documentOf(name, chosen.current_version) : Promise.resolve(null);
}

function plainInput(kind, spec) {
  if (kind === "choice") {
    const select = document.createElement("select");
    select.append(new Option("—", ""), ...spec.choices.map((c) => new Option(c, c)));
    return select;
  }
  const input = element("input", { type: { number: "number", date: "date", boolean: "checkbox" }[kind] ?? "text" });
  if (kind === "number") input.step = "any";
  return input;
}

function moneyInput(spec, value) {
  const wrapper = element("span");
  const amount = element("input", { type: "number", step: "0.01", placeholder: "amount", value: value?.amount ?? "" });
  const currencies = spec.currencies ?? [];
  const currency = currencies.length ? element("select") : element("input", { size: 3 });
  currency.append(...currencies.map((c) => new Option(c, c)));
  currency.value = value?.currency ?? currencies[0] ?? "EUR";
  amount.dataset.part = "amount";
  currency.dataset.part = "currency";
  wrapper.append(amount, currency);
  return wrapper;
}

function fieldInput(name, spec, value, opening) {
  const wrapper = text("label", `${label(spec.labels, name)}${spec.required ? " *" : ""} `);
  const kind = spec.type;
  const input = kind === "money" ? moneyInput(spec, value) : plainInput(kind, spec);
  if (kind === "boolean") {
    input.checked = value === true;
    input.dataset.initial = value === undefined || value === null ? "" : String(value);
  } else if (kind !== "money" && value !== undefined && value !== null) {
    input.value = value;
  }
  if (opening && spec.required) (input.querySelector("[data-part=amount]") ?? input).required = true;
  input.dataset.field = name;
  input.dataset.kind = kind;
  wrapper.append(input);
  return wrapper;
}

// The values of a generated form; a blank input reads as null (unset).
function readFields(container) {
  const values = {};
  for (const input of container.querySelectorAll("[data-field]")) {
    const { field, kind } = input.dataset;
    if (kind === "json") {
      Object.assign(values, readJson(input));
    } else if (kind === "boolean") {
      values[field] = input.checked || input.dataset.initial !== "" ? input.checked : null;
    } else if (kind === "money") {
      const amount = input.querySelector("[data-part=amount]").value;
      values[field] = amount === "" ? null
        : { amount: Number(amount), currency: input.querySelector("[data-part=currency]").value };
    } else {
      values[field] = input.value === "" ? null : kind === "number" ? Number(input.value) : input.value;
    }
  }
  return values;
}

function readJson(area) {
  let parsed;
  try { parsed = JSON.parse(area.value || "{}"); } catch { parsed = null; }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error("Fields must be a JSON object, e.g. {\"amount\": 120}");
  }
  const removed = Object.keys(JSON.parse(area.dataset.before || "{}")).filter((k) => !(k in parsed));
  return { ...parsed, ...Object.fromEntries(removed.map((k) => [k, null])) };
}

// Inputs for the declared fields `names`; with extra_fields, a JSON box for the undeclared rest.
function fieldInputs(container, doc, names, values, opening = false) {
  container.replaceChildren(...names.map((n) => fieldInput(n, doc.fields[n], values?.[n], opening)));
  if (!doc.extra_fields) return;
  const declared = new Set(Object.keys(doc.fields ?? {}));
  const extra = Object.fromEntries(Object.entries(values ?? {}).filter(([k]) => !declared.has(k)));
  const area = element("textarea", { rows: 3, value: JSON.stringify(extra) });
  area.dataset.field = "*";
  area.dataset.kind = "json";
  area.dataset.before = area.value;
  const wrapper = text("label", "Other fields (JSON object) ");
  wrapper.append(area);
  container.append(wrapper);
}

async function renderOpenFields() {
  const name = $("#open-type").value;
  const doc = await currentDocument(name);
  if (doc) fieldInputs($("#open-fields"), doc, Object.keys(doc.fields ?? {}), {}, true);
}

// -- the case list -----------------------------------------------------------------------

function filterQuery() {
  const query = new URLSearchParams({ limit: "25" });
  for (const [name, value] of new FormData($("#filters"))) if (value) query.set(name, String(value));
  if (state.cursor) query.set("cursor", state.cursor);
  return query;
}

function heading(column, doc) {
  if (!column.startsWith("fields.")) return HEADINGS[column] ?? column;
  const name = column.slice(7);
  return label(doc?.fields?.[name]?.labels, name);
}

function cell(c, column, docs) {
  if (column.startsWith("fields.")) return show(c.fields[column.slice(7)]);
  if (column.endsWith("_at")) return new Date(c[column]).toLocaleString();
  if (column === "case_type") return state.types.find((t) => t.name === c.case_type)?.label ?? c.case_type;
  if (column === "status") {
    return label(docs.get(`${c.case_type}@${c.case_type_version}`)?.states?.[c.status]?.labels, c.status);
  }
  if (column === "sla_breaches") return c.sla_breaches ? String(c.sla_breaches) : "";
  return show(c[column]);
}

async function rowDocuments(cases) {
  const docs = new Map();
  for (const c of cases) docs.set(`${c.case_type}@${c.case_type_version}`, null);
  await Promise.all([...docs.keys()].map(async (key) => {
    const [name, version] = key.split("@");
    docs.set(key, await documentOf(name, version));
  }));
  return docs;
}

function suggest(list, values) {
  $(list).replaceChildren(...values.map(([value, shown]) => new Option(shown, value)));
}

async function loadCases(append = false) {
  if (!append) state.cursor = null;
  const page = await api(`/cases?${filterQuery()}`);
  const [typeDoc, docs] = await Promise.all([
    currentDocument($("#filters [name=case_type]").value), rowDocuments(page.cases)]);
  const columns = [...(page.columns ?? DEFAULT_COLUMNS), "sla_breaches"];
  $("#cases thead tr").replaceChildren(...columns.map((c) => text("th", heading(c, typeDoc))));
  const body = $("#cases tbody");
  if (!append) body.replaceChildren();
  for (const c of page.cases) {
    const row = document.createElement("tr");
    row.dataset.id = c.id;
    row.append(...columns.map((column) => text("td", cell(c, column, docs))));
    row.addEventListener("click", () => showCase(c.id).catch(showError));
    row.classList.toggle("selected", c.id === state.selected);
    row.classList.toggle("breached", c.sla_breaches > 0);
    body.append(row);
    if (c.queue) state.queues.add(c.queue);
  }
  state.cursor = page.next_cursor;
  $("#more").hidden = !page.next_cursor;
  $("#empty").hidden = body.children.length > 0;
  const states = Object.entries(typeDoc?.states ?? {}).map(([name, s]) => [name, label(s.labels, name)]);
  suggest("#status-options", [...states, ["closed", "closed"]]);
  suggest("#queue-options", [...state.queues].sort().map((q) => [q, q]));
}

// -- one case ----------------------------------------------------------------------------

async function showCase(id) {
  if (id !== state.selected) hideNeeds();
  state.selected = id;
  document.querySelectorAll("#cases tr").forEach((r) => r.classList.toggle("selected", r.dataset.id === id));
  const [c, history] = await Promise.all([api(`/cases/${id}`), api(`/cases/${id}/history`)]);
  const doc = await documentOf(c.case_type, c.case_type_version);
  state.current = { case: c, doc };
  $("#detail").hidden = false;
  $("#d-title").textContent = c.title;
  renderFacts(c);
  renderTransitions(c);
  const editable = c.editable_fields ?? Object.keys(doc.fields ?? {});
  fieldInputs($("#edit-fields"), doc, editable, c.fields);
  $("#save-fields").disabled = c.status === "closed" || !$("#edit-fields [data-field]");
  renderSlas(c.slas);
  renderHistory(history);
}

function renderFacts(c) {
  const rows = {
    Status: c.labels.status, "Case type": `${c.labels.case_type} (v${c.case_type_version})`,
    Priority: c.priority, Queue: c.queue, Assignee: c.assignee, Escalations: c.escalations,
    Party: c.party_id, Version: c.version, Opened: new Date(c.opened_at).toLocaleString(),
  };
  if (c.closed_reason) rows["Closed because"] = c.closed_reason;
  if (c.parent_id) rows["Parent case"] = c.parent_id;
  if (c.children.length) rows["Child cases"] = c.children.join(", ");
  for (const [name, value] of Object.entries(c.fields)) rows[c.labels.fields[name] ?? name] = show(value);
  $("#d-facts").replaceChildren(...Object.entries(rows).flatMap(([k, v]) => [text("dt", k), text("dd", v)]));
}

function renderTransitions(c) {
  const buttons = c.transitions.map((t) => {
    const button = text("button", t.label);
    button.type = "button";
    button.dataset.transition = t.name;
    button.title = `${t.name} → ${t.to}`;
    button.addEventListener("click", () => { showError(null); takeTransition(t).catch(showError); });
    return button;
  });
  $("#transitions").replaceChildren(...(buttons.length ? buttons : [text("span", "none available")]));
}

function renderSlas(slas) {
  $("#slas").replaceChildren(...slas.map((s) => {
    const next = Object.entries(s.due).sort(([, a], [, b]) => a.localeCompare(b))[0];
    const when = next ? ` · next: ${next[0]} at ${new Date(next[1]).toLocaleString()}` : "";
    const reached = s.reached.length ? ` · reached: ${s.reached.join(", ")}` : "";
    return text("li", `${s.sla}: ${s.running ? "running" : "paused"}${when}${reached}`);
  }));
  if (!slas.length) $("#slas").append(text("li", "no clock running"));
}

function renderHistory(history) {
  $("#history").replaceChildren(...history.map((h) => {
    const item = document.createElement("li");
    const what = Object.entries(h.data).map(([k, v]) => `${k}: ${show(v)}`).join(", ");
    const cause = h.rule ? ` · rule ${h.rule}` : "";
    const withheld = h.withheld?.length ? ` (not shown to your role: ${h.withheld.join(", ")})` : "";
    const when = new Date(h.recorded_at).toLocaleString();
    item.append(text("strong", h.type.replace(/^Case/, "")), text("div", what + withheld),
      text("div", `v${h.version} · ${h.actor.id} (${h.actor.role})${cause} · ${when}`, "meta"));
    return item;
  }));
}

async function refreshAfterCommand() {
  await showCase(state.selected);
  setTimeout(() => loadCases().catch(showError), 600); // the list is a projection: it follows shortly
}

// A transition that requires fields the case lacks asks for them first, in #needs-form.
async function takeTransition(transition) {
  const { case: c, doc } = state.current;
  const requires = doc.transitions?.[transition.name]?.requires ?? [];
  const missing = requires.filter((f) => c.fields[f] === undefined || c.fields[f] === null);
  if (missing.length) {
    state.pending = transition.name;
    $("#needs-title").textContent = `${transition.label} needs:`;
    const needed = Object.fromEntries(missing.map((f) => [f, { type: "text", ...doc.fields?.[f], required: true }]));
    fieldInputs($("#needs-fields"), { fields: needed }, missing, {}, true);
    $("#needs-form").hidden = false;
    return;
  }
  await sendTransition(transition.name, {});
}

async function sendTransition(name, fields) {
  const reason = $("#transition-form [name=reason]").value;
  const body = { transition: name, fields, expected_version: state.current.case.version };
  if (reason) body.reason = reason;
  await send(`/cases/${state.selected}/transitions`, "POST", body);
  $("#transition-form").reset();
  hideNeeds();
  await refreshAfterCommand();
}

function hideNeeds() {
  state.pending = null;
  $("#needs-form").hidden = true;
  $("#needs-fields").replaceChildren();
}

async function saveFields() {
  const { case: c } = state.current;
  const values = readFields($("#edit-fields"));
  const fields = Object.fromEntries(Object.entries(values).filter(([k, v]) => !same(v, c.fields[k])));
  if (!Object.keys(fields).length) throw new Error("Nothing to save: no field was changed");
  await send(`/cases/${state.selected}/fields`, "PATCH", { fields, expected_version: c.version });
  await refreshAfterCommand();
}

async function runCommand(form) {
  const body = Object.fromEntries(new FormData(form));
  for (const [k, v] of Object.entries(body)) if (v === "") delete body[k];
  body.expected_version = state.current.case.version;
  await send(`/cases/${state.selected}/${form.dataset.verb}`, "POST", body);
  form.reset();
  await refreshAfterCommand();
}

async function openCase(form) {
  const data = Object.fromEntries(new FormData(form));
  const body = { title: data.title, case_type: data.case_type,
    fields: withoutBlanks(readFields($("#open-fields"))), party_id: data.party_id || null };
  const opened = await send("/cases", "POST", body);
  form.reset();
  await loadTypes();
  await showCase(opened.id);
  for (let i = 0; i < 20; i++) {  // wait for the projection to list it
    await loadCases();
    if (document.querySelector(`#cases tr[data-id="${opened.id}"]`)) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

// -- wiring ------------------------------------------------------------------------------

function signOut() {
  sessionStorage.removeItem("caseledger-key");
  state.key = null;
  render();
}

function render() {
  $("#sign-in").hidden = Boolean(state.key);
  $("#workspace").hidden = !state.key;
  $("#sign-out").hidden = !state.key;
  $("#language").value = state.language;
  document.documentElement.lang = state.language;
  if (state.key) loadTypes().then(() => loadCases()).catch(showError);
}

function on(target, event, handler) {
  (typeof target === "string" ? $(target) : target).addEventListener(event, (e) => {
    e.preventDefault();
    showError(null);
    Promise.resolve(handler(e)).catch(showError);
  });
}

on("#key-form", "submit", () => {
  state.key = $("#key").value.trim();
  sessionStorage.setItem("caseledger-key", state.key);
  render();
});
on("#sign-out", "click", signOut);
on("#filters", "submit", () => loadCases());
on("#filters [name=case_type]", "change", () => loadCases());
on("#more", "click", () => loadCases(true));
on("#open-form", "submit", (e) => openCase(e.target));
on("#open-type", "change", () => renderOpenFields());
on("#fields-form", "submit", () => saveFields());
on("#transition-form", "submit", () => undefined);
on("#needs-form", "submit", () => sendTransition(state.pending, withoutBlanks(readFields($("#needs-fields")))));
on("#needs-cancel", "click", hideNeeds);
on("#language", "change", () => {
  state.language = $("#language").value;
  localStorage.setItem("caseledger-language", state.language);
  document.documentElement.lang = state.language;
  if (!state.key) return undefined;
  return Promise.all([loadTypes().then(() => loadCases()), state.selected ? showCase(state.selected) : null]);
});
document.querySelectorAll(".actions form").forEach((form) => on(form, "submit", () => runCommand(form)));
checkHealth();
setInterval(checkHealth, 10000);
render();
