// One case: its facts, what the signed-in role may do now (GET /cases/{id}: `actions` and
// `transitions`, each enabled or not with the reason), its fields, SLA clocks and timeline.
// For audit: the case as recorded at a past moment (?as_of=, read-only), its legal hold, and
// the evidence bundle and audit report for the roles that may download them.
import {
  Alpine, ApiError, api, attempt, caseTypeDocument, milestone, pageParams, priorityLabel, send, show, start, t, when,
} from "./app.js";
import { changedValues, fieldForm, readValues, withoutBlanks } from "./fields.js";

const caseId = window.location.pathname.split("/").pop();
const DOWNLOADERS = ["admin", "auditor"]; // GET /cases/{id}/evidence and /export
const HOLD_PLACERS = ["admin", "manager"]; // POST /cases/{id}/legal-hold
const HOLD_LIFTERS = ["admin"]; // DELETE /cases/{id}/legal-hold

const role = () => Alpine.store("app").me?.role;
const pad = (n) => String(n).padStart(2, "0");

/** An instant as a date-time input shows it: local time, to the second. */
function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A date-time input's local value as an instant in UTC (ISO 8601, Z). */
const instant = (local) => new Date(local).toISOString().replace(".000Z", "Z");

const casePage = () => ({
  c: null,
  document: null,
  actions: {},
  transitions: [],
  timeline: [],
  form: [],
  needs: null, // the transition waiting for the fields it requires
  needsForm: [],
  reason: "",
  assignee: "",
  note: "",
  closeReason: "",
  reopenReason: "",
  asOf: pageParams().get("as_of") ?? "", // the recorded moment read (ISO 8601), "" for now
  asOfInput: "",
  holdReason: "",
  liftReason: "",

  init() {
    window.addEventListener("popstate", () => {
      this.asOf = pageParams().get("as_of") ?? "";
      this.load();
    });
    this.load();
  },

  async load() {
    const asOf = this.asOf;
    const query = asOf ? `?as_of=${encodeURIComponent(asOf)}` : "";
    this.asOfInput = asOf ? localInput(asOf) : "";
    const done = await attempt(async () => {
      const c = await api(`/cases/${caseId}${query}`);
      this.document = await caseTypeDocument(c.case_type, c.case_type_version);
      this.actions = c.actions;
      this.transitions = c.transitions;
      const editable = c.editable_fields ?? Object.keys(this.document.fields ?? {});
      this.form = fieldForm(this.document, editable.filter((name) => name in (this.document.fields ?? {})), c.fields);
      this.timeline = await api(`/cases/${caseId}/timeline${query}`);
      this.c = c;
      return true;
    });
    if (!done && asOf) this.c = null; // never show the case of now as if it were the past
  },

  // -- the case as recorded at a past moment (GET /cases/{id}?as_of=) ------------------------

  past() {
    return Boolean(this.asOf);
  },

  /** Read the case as recorded at the moment picked; the URL keeps it, to share or reload. */
  viewAsOf() {
    if (!this.asOfInput) return this.viewNow();
    return this.travel(instant(this.asOfInput));
  },

  viewNow() {
    return this.travel("");
  },

  travel(asOf) {
    this.asOf = asOf;
    const url = new URL(window.location.href);
    if (asOf) url.searchParams.set("as_of", asOf);
    else url.searchParams.delete("as_of");
    window.history.pushState(null, "", url);
    return this.load();
  },

  pastText() {
    if (!this.past()) return "";
    const at = new Intl.DateTimeFormat(t("meta.locale"), { dateStyle: "medium", timeStyle: "medium" });
    return t("case.as_of_banner", { when: at.format(new Date(this.c.as_of ?? this.asOf)), version: this.c.version });
  },

  // -- audit: downloads and the legal hold -----------------------------------------------------

  mayDownload() {
    return DOWNLOADERS.includes(role());
  },

  mayPlaceHold() {
    return HOLD_PLACERS.includes(role()) && !this.past() && !this.c.legal_hold;
  },

  mayLiftHold() {
    return HOLD_LIFTERS.includes(role()) && !this.past() && Boolean(this.c.legal_hold);
  },

  placeHold() {
    return this.holdCommand(() => send(`/cases/${caseId}/legal-hold`, "POST", { reason: this.holdReason }), "holdReason");
  },

  liftHold() {
    const reason = encodeURIComponent(this.liftReason);
    return this.holdCommand(() => send(`/cases/${caseId}/legal-hold?reason=${reason}`, "DELETE"), "liftReason");
  },

  async holdCommand(work, reset) {
    const done = await this.command(work);
    if (done !== undefined) this[reset] = "";
  },

  /** Download an export as a file: the key goes in a header, so a plain link cannot. */
  download(kind) {
    const path = kind === "evidence" ? `/cases/${caseId}/evidence` : `/cases/${caseId}/export?format=html`;
    const name = kind === "evidence" ? `case-${caseId}-evidence.json` : `case-${caseId}.html`;
    return attempt(async () => {
      const store = Alpine.store("app");
      const answer = await fetch(path, { headers: { Authorization: `Bearer ${store.key}`, "Accept-Language": store.language } });
      if (!answer.ok) {
        const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
        throw new ApiError(answer.status, body, `${answer.status} ${answer.statusText}`);
      }
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await answer.blob());
      link.download = name;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    });
  },

  // -- what the page shows -----------------------------------------------------------------

  facts() {
    const c = this.c;
    const rows = [
      [t("column.status"), c.labels.status],
      [t("column.case_type"), `${c.labels.case_type} (v${c.case_type_version})`],
      [t("column.priority"), priorityLabel(c.priority)],
      [t("column.queue"), show(c.queue)],
      [t("column.assignee"), show(c.assignee)],
      [t("column.party_id"), show(c.party_id)],
      [t("column.opened_at"), when(c.opened_at)],
      [t("column.updated_at"), when(c.updated_at)],
      [t("case.escalations"), show(c.escalations)],
    ];
    if (c.closed_reason) rows.push([t("case.closed_reason"), c.closed_reason]);
    if (c.legal_hold) rows.push([t("case.legal_hold"), this.holdText(c.legal_hold)]);
    if (c.parent_id) rows.push([t("case.parent"), c.parent_id]);
    if (c.children.length) rows.push([t("case.children"), c.children.join(", ")]);
    for (const [name, value] of Object.entries(c.fields)) {
      rows.push([c.labels.fields[name] ?? name, this.fieldText(name, value)]);
    }
    return rows;
  },

  /** A field's value as people read it: a choice by its label (GET /cases/{id} gives them in
   * `labels.choices`), the rest by its type. */
  fieldText(name, value) {
    if ((value === null || value === undefined) && this.c.erased?.includes(name)) return t("case.erased");
    return this.c.labels.choices?.[name]?.[value] ?? show(value, this.document.fields?.[name]);
  },

  holdText(hold) {
    return t("case.legal_hold_detail", { reason: hold.reason, by: hold.placed_by ?? "—", version: hold.version });
  },

  slaLines() {
    return this.c.slas.map((clock) => {
      const next = Object.entries(clock.due).sort(([, a], [, b]) => a.localeCompare(b))[0];
      const parts = [clock.sla, t(clock.running ? "sla.running" : "sla.paused")];
      if (next) parts.push(t("sla.next", { milestone: milestone(next[0]), when: when(next[1]) }));
      if (clock.reached.length) parts.push(t("sla.reached", { milestones: clock.reached.map(milestone).join(", ") }));
      return parts.join(" · ");
    });
  },

  readOnly() {
    return !this.transitions.some((tr) => tr.enabled) && !Object.values(this.actions).some(Boolean);
  },

  when(iso) {
    return when(iso);
  },

  /** A change's value before or after: a choice by its label (`before_label`, `after_label`). */
  value(change, side) {
    return change[`${side}_label`] ?? show(change[side], this.document.fields?.[change.field]);
  },

  ruleText(rule) {
    return t("timeline.rule", { rule: rule.label ?? rule.name });
  },

  /** What an SLA mark adds to its sentence: when each milestone falls, or fell, in the
   * browser's time zone. */
  slaText(entry) {
    const sla = entry.sla;
    const parts = Object.entries(sla.due ?? {}).sort(([, a], [, b]) => a.localeCompare(b))
      .map(([name, at]) => t("sla.due_at", { milestone: milestone(name), when: when(at) }));
    if (sla.due_at) parts.push(t("sla.due_at", { milestone: milestone(sla.milestone ?? "deadline"), when: when(sla.due_at) }));
    if (!parts.length && sla.sentence !== entry.sentence) parts.push(sla.sentence);
    return parts.join(" · ");
  },

  sourceText(source) {
    return t("timeline.source", { system: source.system, record: source.record_id ?? "—", connector: source.connector ?? "—" });
  },

  // -- commands ------------------------------------------------------------------------------

  missing(transition) {
    const requires = this.document.transitions?.[transition.name]?.requires ?? [];
    return requires.filter((name) => this.c.fields[name] === undefined || this.c.fields[name] === null);
  },

  /** A transition that lacks only fields it requires can be taken by filling them in. */
  clickable(transition) {
    return transition.enabled || this.missing(transition).length > 0;
  },

  async take(transition) {
    const missing = this.missing(transition);
    if (missing.length) {
      this.needs = transition;
      const specs = Object.fromEntries(missing.map((name) => [name, { ...this.document.fields?.[name], required: true }]));
      this.needsForm = fieldForm({ fields: specs }, missing, {}, { opening: true });
      return;
    }
    await this.transition(transition.name, {});
  },

  async transition(name, fields) {
    const body = { transition: name, fields, expected_version: this.c.version };
    if (this.reason) body.reason = this.reason;
    await this.command(() => send(`/cases/${caseId}/transitions`, "POST", body));
    if (!Alpine.store("app").error) {
      this.reason = "";
      this.needs = null;
    }
  },

  confirmNeeds() {
    return attempt(() => this.transition(this.needs.name, withoutBlanks(readValues(this.needsForm))));
  },

  cancelNeeds() {
    this.needs = null;
  },

  async command(work) {
    const done = await attempt(work);
    if (done !== undefined) await this.load();
    return done;
  },

  async verb(path, body, reset) {
    const done = await this.command(() => send(`/cases/${caseId}/${path}`, "POST", { ...body, expected_version: this.c.version }));
    if (done !== undefined) this[reset] = "";
  },

  assign() {
    return this.verb("assign", { assignee: this.assignee.trim() || null }, "assignee");
  },

  assignToMe() {
    return this.verb("assign", { assignee: Alpine.store("app").me.actor_id }, "assignee");
  },

  addNote() {
    return this.verb("notes", { text: this.note }, "note");
  },

  close() {
    return this.verb("close", { reason: this.closeReason }, "closeReason");
  },

  reopen() {
    return this.verb("reopen", { reason: this.reopenReason }, "reopenReason");
  },

  saveFields() {
    return this.command(() => {
      const fields = changedValues(this.form, this.c.fields);
      if (!Object.keys(fields).length) throw new Error(t("case.nothing_changed"));
      return send(`/cases/${caseId}/fields`, "PATCH", { fields, expected_version: this.c.version });
    });
  },
});

start("casePage", casePage);
