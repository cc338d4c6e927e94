// caseledger dashboard: plain JavaScript against the HTTP API, no build step, no CDN.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { key: sessionStorage.getItem("caseledger-key"), cursor: null, selected: null };

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (options.body) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { ...options, headers });
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    if (answer.status === 401) signOut();
    const detail = body?.detail ?? answer.statusText;
    throw new Error(body?.hint ? `${detail} (${body.hint})` : detail);
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

async function checkHealth() {
  const pill = $("#health");
  try {
    const answer = await fetch("/health");
    const body = await answer.json();
    const down = Object.entries(body.components).filter(([, c]) => !c.ok).map(([n]) => n);
    pill.textContent = down.length ? `down: ${down.join(", ")}` : "database and broker up";
    pill.className = down.length ? "pill bad" : "pill ok";
  } catch {
    pill.textContent = "API unreachable";
    pill.className = "pill bad";
  }
}

function filterQuery() {
  const form = new FormData($("#filters"));
  const query = new URLSearchParams({ limit: "25" });
  for (const [name, value] of form) if (value) query.set(name, String(value));
  if (state.cursor) query.set("cursor", state.cursor);
  return query;
}

async function loadCases(append = false) {
  if (!append) state.cursor = null;
  const page = await api(`/cases?${filterQuery()}`);
  const body = $("#cases tbody");
  if (!append) body.replaceChildren();
  for (const c of page.cases) {
    const row = document.createElement("tr");
    row.dataset.id = c.id;
    row.append(text("td", c.title), text("td", c.case_type), text("td", c.status),
      text("td", c.assignee), text("td", c.version), text("td", new Date(c.updated_at).toLocaleString()));
    row.addEventListener("click", () => showCase(c.id).catch(showError));
    if (c.id === state.selected) row.classList.add("selected");
    body.append(row);
  }
  state.cursor = page.next_cursor;
  $("#more").hidden = !page.next_cursor;
  $("#empty").hidden = body.children.length > 0;
}

async function showCase(id) {
  state.selected = id;
  document.querySelectorAll("#cases tr").forEach((r) => r.classList.toggle("selected", r.dataset.id === id));
  const [c, history] = await Promise.all([api(`/cases/${id}`), api(`/cases/${id}/history`)]);
  state.version = c.version;
  $("#detail").hidden = false;
  $("#d-title").textContent = c.title;
  const facts = $("#d-facts");
  facts.replaceChildren();
  const rows = { Status: c.status, Assignee: c.assignee, "Case type": `${c.case_type} v${c.case_type_version}`,
    Party: c.party_id, Version: c.version, Fields: JSON.stringify(c.fields), Opened: new Date(c.opened_at).toLocaleString() };
  for (const [name, value] of Object.entries(rows)) facts.append(text("dt", name), text("dd", value));
  const list = $("#history");
  list.replaceChildren();
  for (const h of history) {
    const item = document.createElement("li");
    const what = Object.entries(h.data).filter(([k]) => !["fields"].includes(k)).map(([k, v]) => `${k}: ${v}`).join(", ");
    item.append(text("strong", h.type.replace(/^Case/, "")), text("div", what),
      text("div", `v${h.version} · ${h.actor.id} (${h.actor.role}) · ${new Date(h.recorded_at).toLocaleString()}`, "meta"));
    list.append(item);
  }
}

async function runCommand(form) {
  const body = Object.fromEntries(new FormData(form));
  for (const [k, v] of Object.entries(body)) if (v === "") delete body[k];
  body.expected_version = state.version;
  await api(`/cases/${state.selected}/${form.dataset.verb}`, { method: "POST", body: JSON.stringify(body) });
  form.reset();
  await showCase(state.selected);
  setTimeout(() => loadCases().catch(showError), 600); // the list is a projection: it follows shortly
}

async function openCase(form) {
  const data = Object.fromEntries(new FormData(form));
  let fields;
  try { fields = JSON.parse(data.fields || "{}"); } catch { throw new Error("Fields must be a JSON object, e.g. {\"amount\": 120}"); }
  const body = { title: data.title, case_type: data.case_type, fields, party_id: data.party_id || null };
  const opened = await api("/cases", { method: "POST", body: JSON.stringify(body) });
  form.reset();
  await showCase(opened.id);
  for (let i = 0; i < 20; i++) {  // wait for the projection to list it
    await loadCases();
    if (document.querySelector(`#cases tr[data-id="${opened.id}"]`)) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function signOut() {
  sessionStorage.removeItem("caseledger-key");
  state.key = null;
  render();
}

function render() {
  $("#sign-in").hidden = Boolean(state.key);
  $("#workspace").hidden = !state.key;
  $("#sign-out").hidden = !state.key;
  if (state.key) loadCases().catch(showError);
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
