// caseledger dashboard: plain JavaScript against the HTTP API, no build step, no CDN.
// Everything a case shows (labels, transitions, fields, columns) comes from its case type.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = {
  key: sessionStorage.getItem("caseledger-key"),
  language: localStorage.getItem("caseledger-language") || "en",
  cursor: null, selected: null, version: null, types: [], documents: new Map(),
};
const DEFAULT_COLUMNS = ["title", "case_type", "status", "priority", "queue", "assignee", "updated_at"];

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, "Accept-Language": state.language };
  if (options.body) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { ...options, headers });
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    if (answer.status === 401) signOut();
    const parts = [body?.detail ?? answer.statusText];
    if (body?.hint) parts.push(`(${body.hint})`);
    if (body?.problems) parts.push(`\n• ${body.problems.join("\n• ")}`);
    throw new Error(parts.join(" "));
  }
  return body;
}

function showError(error) {
  const banner = $("#error");
  banner.textContent = error ? String(error.message ?? error) : "";
  banner.hidden = !error;
}

function text(tag, value, className) {
  const node = document.createElement(tag);
  node.textContent = value ?? "—";
  if (className) node.className = className;
  return node;
}

const label = (labels, fallback) => labels?.[state.language] ?? labels?.en ?? fallback;
const show = (value) => value && typeof value === "object" && "amount" in value
  ? `${value.amount} ${value.currency}` : typeof value === "object" && value !== null ? JSON.stringify(value) : value;

async function checkHealth() {
  const pill = $("#health");
  try {
    const body = await (await fetch("/health")).json();
    const down = Object.entries(body.components).filter(([, c]) => !c.ok).map(([n]) => n);
    pill.textContent = down.length ? `down: ${down.join(", ")}` : "database and broker up";
    pill.className = down.length ? "pill bad" : "pill ok";
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

function fieldInput(name, spec, value) {
  const wrapper = text("label", `${label(spec.labels, name)}${spec.required ? " *" : ""} `);
  const kind = spec.type;
  let input;
  if (kind === "choice") {
    input = document.createElement("select");
    input.append(new Option("—", ""), ...spec.choices.map((c) => new Option(c, c)));
  } else if (kind === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = value === true;
  } else if (kind === "money") {
    input = document.createElement("span");
    const amount = Object.assign(document.createElement("input"), { type: "number", step: "0.01", placeholder: "amount" });
    const currency = Object.assign(document.createElement("input"), { size: 3, value: value?.currency ?? spec.currencies?.[0] ?? "EUR" });
    amount.value = value?.amount ?? "";
    amount.dataset.part = "amount";
    currency.dataset.part = "currency";
    input.append(amount, currency);
  } else {
    input = document.createElement("input");
    input.type = { number: "number", date: "date" }[kind] ?? "text";
    if (kind === "number") input.step = "any";
  }
  if (kind !== "boolean" && kind !== "money" && value !== undefined && value !== null) input.value = value;
  input.dataset.field = name;
  input.dataset.kind = kind;
  wrapper.append(input);
  return wrapper;
}

function readFields(container) {
  const values = {};
  for (const input of container.querySelectorAll("[data-field]")) {
    const { field, kind } = input.dataset;
    if (kind === "json") {
      try { Object.assign(values, JSON.parse(input.value || "{}")); } catch { throw new Error("Fields must be a JSON object, e.g. {\"amount\": 120}"); }
    } else if (kind === "boolean") {
      values[field] = input.checked;
    } else if (kind === "money") {
      const amount = input.querySelector("[data-part=amount]").value;
      if (amount !== "") values[field] = { amount: Number(amount), currency: input.querySelector("[data-part=currency]").value };
    } else if (input.value !== "") {
      values[field] = kind === "number" ? Number(input.value) : input.value;
    }
  }
  return values;
}

function fieldInputs(container, document_, names, values) {
  container.replaceChildren();
  if (document_.extra_fields) {
    const area = Object.assign(window.document.createElement("textarea"), { rows: 3, value: JSON.stringify(values ?? {}) });
    area.dataset.field = "*";
    area.dataset.kind = "json";
    container.append(text("label", "Fields (JSON object)"), area);
    return;
  }
  for (const name of names) container.append(fieldInput(name, document_.fields[name], values?.[name]));
}

async function renderOpenFields() {
  const name = $("#open-type").value;
  const chosen = state.types.find((t) => t.name === name);
  if (!chosen) return;
  const doc = await documentOf(name, chosen.current_version);
  fieldInputs($("#open-fields"), doc, Object.keys(doc.fields ?? {}), {});
}

// -- the case list -----------------------------------------------------------------------

function filterQuery() {
  const query = new URLSearchParams({ limit: "25" });
  for (const [name, value] of new FormData($("#filters"))) if (value) query.set(name, String(value));
  if (state.cursor) query.set("cursor", state.cursor);
  return query;
}

function cell(c, column) {
  if (column.startsWith("fields.")) return show(c.fields[column.slice(7)]);
  if (column.endsWith("_at")) return new Date(c[column]).toLocaleString();
  if (column === "status" && c.sla_breaches) return `${c.status} (${c.sla_breaches} SLA missed)`;
  return show(c[column]);
}

async function loadCases(append = false) {
  if (!append) state.cursor = null;
  const page = await api(`/cases?${filterQuery()}`);
  const columns = page.columns ?? DEFAULT_COLUMNS;
  $("#cases thead tr").replaceChildren(...columns.map((c) => text("th", c.replace("fields.", ""))));
  const body = $("#cases tbody");
  if (!append) body.replaceChildren();
  for (const c of page.cases) {
    const row = document.createElement("tr");
    row.dataset.id = c.id;
    row.append(...columns.map((column) => text("td", cell(c, column))));
    row.addEventListener("click", () => showCase(c.id).catch(showError));
    if (c.id === state.selected) row.classList.add("selected");
    body.append(row);
  }
  state.cursor = page.next_cursor;
  $("#more").hidden = !page.next_cursor;
  $("#empty").hidden = body.children.length > 0;
}

// -- one case ----------------------------------------------------------------------------

async function showCase(id) {
  state.selected = id;
  document.querySelectorAll("#cases tr").forEach((r) => r.classList.toggle("selected", r.dataset.id === id));
  const [c, history] = await Promise.all([api(`/cases/${id}`), api(`/cases/${id}/history`)]);
  const doc = await documentOf(c.case_type, c.case_type_version);
  state.version = c.version;
  $("#detail").hidden = false;
  $("#d-title").textContent = c.title;
  const rows = {
    Status: c.labels.status, "Case type": `${c.labels.case_type} (v${c.case_type_version})`,
    Priority: c.priority, Queue: c.queue, Assignee: c.assignee, Escalations: c.escalations,
    Party: c.party_id, Version: c.version, Opened: new Date(c.opened_at).toLocaleString(),
  };
  if (c.parent_id) rows["Parent case"] = c.parent_id;
  if (c.children.length) rows["Child cases"] = c.children.join(", ");
  for (const [name, value] of Object.entries(c.fields)) rows[c.labels.fields[name] ?? name] = show(value);
  $("#d-facts").replaceChildren(...Object.entries(rows).flatMap(([k, v]) => [text("dt", k), text("dd", v)]));
  const buttons = c.transitions.map((t) => {
    const button = text("button", t.label);
    button.type = "button";
    button.dataset.transition = t.name;
    button.addEventListener("click", () => takeTransition(t.name).catch(showError));
    return button;
  });
  $("#transitions").replaceChildren(...(buttons.length ? buttons : [text("span", "none available")]));
  const editable = c.editable_fields ?? Object.keys(doc.fields ?? {});
  fieldInputs($("#edit-fields"), doc, editable, c.fields);
  $("#save-fields").disabled = !doc.extra_fields && editable.length === 0;
  $("#slas").replaceChildren(...c.slas.map((s) => {
    const next = Object.entries(s.due).sort(([, a], [, b]) => a.localeCompare(b))[0];
    const when = next ? `next: ${next[0]} at ${new Date(next[1]).toLocaleString()}` : "";
    const reached = s.reached.length ? ` · reached: ${s.reached.join(", ")}` : "";
    return text("li", `${s.sla}: ${s.running ? "running" : "paused"} ${when}${reached}`);
  }));
  if (!c.slas.length) $("#slas").append(text("li", "no clock running"));
  $("#history").replaceChildren(...history.map((h) => {
    const item = document.createElement("li");
    const what = Object.entries(h.data).map(([k, v]) => `${k}: ${show(v)}`).join(", ");
    const cause = h.rule ? ` · rule ${h.rule}` : "";
    item.append(text("strong", h.type.replace(/^Case/, "")), text("div", what),
      text("div", `v${h.version} · ${h.actor.id} (${h.actor.role})${cause} · ${new Date(h.recorded_at).toLocaleString()}`, "meta"));
    return item;
  }));
}

async function refreshAfterCommand() {
  await showCase(state.selected);
  setTimeout(() => loadCases().catch(showError), 600); // the list is a projection: it follows shortly
}

async function takeTransition(name) {
  const reason = $("#transition-form [name=reason]").value;
  const body = { transition: name, expected_version: state.version };
  if (reason) body.reason = reason;
  await api(`/cases/${state.selected}/transitions`, { method: "POST", body: JSON.stringify(body) });
  $("#transition-form").reset();
  await refreshAfterCommand();
}

async function saveFields() {
  const fields = readFields($("#edit-fields"));
  await api(`/cases/${state.selected}/fields`, {
    method: "PATCH", body: JSON.stringify({ fields, expected_version: state.version }),
  });
  await refreshAfterCommand();
}

async function runCommand(form) {
  const body = Object.fromEntries(new FormData(form));
  for (const [k, v] of Object.entries(body)) if (v === "") delete body[k];
  body.expected_version = state.version;
  await api(`/cases/${state.selected}/${form.dataset.verb}`, { method: "POST", body: JSON.stringify(body) });
  form.reset();
  await refreshAfterCommand();
}

async function openCase(form) {
  const data = Object.fromEntries(new FormData(form));
  const body = { title: data.title, case_type: data.case_type, fields: readFields($("#open-fields")),
    party_id: data.party_id || null };
  const opened = await api("/cases", { method: "POST", body: JSON.stringify(body) });
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
  if (state.key) loadTypes().then(() => loadCases()).catch(showError);
}

function on(selector, event, handler) {
  $(selector).addEventListener(event, (e) => {
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
on("#more", "click", () => loadCases(true));
on("#open-form", "submit", (e) => openCase(e.target));
on("#open-type", "change", () => renderOpenFields());
on("#fields-form", "submit", () => saveFields());
on("#transition-form", "submit", () => undefined);
$("#language").addEventListener("change", () => {
  state.language = $("#language").value;
  localStorage.setItem("caseledger-language", state.language);
  showError(null);
  Promise.all([loadTypes(), state.selected ? showCase(state.selected) : null]).catch(showError);
});
document.querySelectorAll(".actions form").forEach((form) => {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    showError(null);
    runCommand(form).catch(showError);
  });
});
checkHealth();
setInterval(checkHealth, 10000);
render();
