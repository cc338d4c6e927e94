// The case-type studio's editor of one version (/ui/studio/{name}/{version}): the document held
// in the page, edited through forms (what business profiles own) or as YAML (what IT owns), both
// views of the same object; checked as you type (POST /case-types/check, debounced), each
// problem shown beside its control or YAML line; a diff against the published version, computed
// here so unsaved edits show; simulation and review in studio-run.js.
import { Alpine, api, ApiError, attempt, caseTypeDocument, send, start, t } from "./app.js";
import { diff, fromYaml, getAt, inline, lineOf, pathToPointer, pointer, readablePath, setAt, toYaml, tokensOf, yamlLines } from "./studio-doc.js";
import { rightsOf } from "./studio-rights.js";
import { runMethods } from "./studio-run.js";

const CHECK_DELAY_MS = 400;
const ROLES = ["admin", "manager", "handler", "integrator", "auditor"];
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/** A language code as the server reads it (services/case_type_checks.py LANGUAGE). */
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/;
const TABS = ["labels", "rules", "tables", "notifications", "slas", "views", "yaml", "diff", "simulate", "review"];
const route = () => window.location.pathname.split("/").filter(Boolean).slice(-2).map(decodeURIComponent);
const clone = (value) => JSON.parse(JSON.stringify(value));

/** The tab where a problem at `at` is edited. */
function tabOf(at) {
  const [top, , third] = tokensOf(at);
  if (/\/(labels|choice_labels|blocked_reason)(\/|$)/.test(at) || top === "labels") return "labels";
  if (/^\/fields\/[^/]+\/help(\/|$)/.test(at)) return "labels";
  if (top === "decision_tables") return "tables";
  if (top === "notifications") return "notifications";
  if (top === "slas" || top === "calendar") return "slas";
  if (top === "views") return "views";
  if (top === "rules" || (top === "transitions" && third === "if")) return "rules";
  return "yaml";
}

const studio = () => ({
  name: route()[0],
  version: Number(route()[1]),
  tabs: TABS,
  tab: "labels",
  record: null, // the version's summary (status, review, author)
  current: null, // the published version new cases open under
  published: null, // its document
  doc: {},
  saved: "", // the document as last saved, as JSON
  yamlText: "",
  yamlError: null,
  lines: new Map(),
  issues: [],
  checking: false,
  checked: false,
  checkMissing: false,
  timer: null,
  saving: false,
  discarding: false, // the confirmation of "Discard draft" is open
  discardReason: "",
  addedLanguages: [], // languages added in the Labels tab, shown before any text is typed
  newLanguage: "",
  languageProblem: "",
  ...runMethods(),

  init() {
    this.load();
  },

  async load() {
    await attempt(async () => {
      const [shown, version] = await Promise.all([api(`/case-types/${this.name}`), api(`/case-types/${this.name}/versions/${this.version}`)]);
      this.current = shown.current_version;
      this.record = shown.versions.find((row) => row.version === this.version) ?? null;
      this.published = this.current ? clone(await caseTypeDocument(this.name, this.current)) : null;
      if (!this.saved || !this.dirty()) {
        this.doc = clone(version.document);
        this.saved = JSON.stringify(version.document);
        this.showYaml();
      }
      await this.loadRun();
    });
    this.check();
  },

  // -- who may do what ---------------------------------------------------------------------

  role() {
    return Alpine.store("app").me?.role;
  },

  mayAuthor() {
    return rightsOf(Alpine.store("app").me).includes("author");
  },

  editable() {
    return this.mayAuthor() && this.status() === "draft";
  },

  status() {
    return this.record?.status ?? "";
  },

  dirty() {
    return JSON.stringify(this.doc) !== this.saved;
  },

  title() {
    const labels = this.doc.labels ?? {};
    return `${labels[Alpine.store("app").language] ?? labels.en ?? this.name} · v${this.version}`;
  },

  tabLabel: (tab) => t(`studio.tab_${tab}`),
  recipientKinds: () => ["role", "assignee", "field", "address"],
  recipientLabel: (kind) => t(`studio.recipient_${kind}`),
  dayLabel: (day) => t(`studio.day_${day}`),
  changeLabel: (kind) => t(`studio.change_${kind}`),
  roleLabel: (role) => t(`studio.role_${role}`),

  // -- reading and writing the document by pointer -----------------------------------------

  at(...tokens) {
    return pointer(...tokens);
  },

  get(at) {
    return getAt(this.doc, at);
  },

  text(at) {
    const value = this.get(at);
    return value === undefined || value === null ? "" : String(value);
  },

  yamlOf(at) {
    return inline(this.get(at));
  },

  names(at) {
    const value = this.get(at);
    return value && typeof value === "object" ? Object.keys(value) : [];
  },

  indexes(at) {
    const value = this.get(at);
    return Array.isArray(value) ? value.map((_, index) => index) : [];
  },

  /** Set a text; an empty one removes the key (and labels left empty). */
  setText(at, value) {
    setAt(this.doc, at, value === "" ? undefined : value);
    this.changed();
  },

  /** Set a text that stays even when empty (a decision-table cell: "" matches anything). */
  setKept(at, value) {
    setAt(this.doc, at, value);
    this.changed();
  },

  /** A plain value typed as text: numbers and true/false as such. */
  setPlain(at, value) {
    const plain = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value === "true" ? true : value === "false" ? false : value;
    this.setText(at, plain);
  },

  listText(at) {
    const value = this.get(at);
    return Array.isArray(value) ? value.join(", ") : this.text(at);
  },

  setList(at, value, numbers = false) {
    const items = value.split(",").map((item) => item.trim()).filter(Boolean);
    this.setText(at, items.length ? items.map((item) => (numbers && /^\d+$/.test(item) ? Number(item) : item)) : "");
  },

  addItem(at, item) {
    const list = this.get(at) ?? [];
    setAt(this.doc, at, [...list, clone(item)]);
    this.changed();
  },

  removeItem(at) {
    setAt(this.doc, at, undefined);
    this.changed();
  },

  moveUp(at) {
    const tokens = tokensOf(at);
    const index = Number(tokens.pop());
    const list = this.get(pointer(...tokens));
    if (index > 0) list.splice(index - 1, 0, list.splice(index, 1)[0]);
    this.changed();
  },

  // -- labels ------------------------------------------------------------------------------

  /** English and French, every language a label or help text of the document has, and
   * those added here. */
  languages() {
    const found = new Set(["en", "fr"]);
    for (const row of this.labelRows()) {
      const texts = this.get(row.at);
      if (texts && typeof texts === "object") Object.keys(texts).forEach((lang) => found.add(lang));
    }
    this.addedLanguages.forEach((lang) => found.add(lang));
    return [...found];
  },

  /** A column for another language (a code such as de or pt-BR, as the server reads it). */
  addLanguage() {
    const code = this.newLanguage.trim();
    if (!LANGUAGE.test(code)) {
      this.languageProblem = t("studio.language_invalid", { code });
      return;
    }
    this.languageProblem = "";
    this.newLanguage = "";
    if (!this.languages().includes(code)) this.addedLanguages.push(code);
  },

  /** Every labelled thing, in the document's order: the case type, states, transitions,
   * fields (their labels, then their help texts) and their choices. */
  labelRows() {
    const rows = [{ at: "/labels", kind: t("studio.case_type"), name: this.name }];
    for (const [group, kind] of [["states", "studio.state"], ["transitions", "studio.transition"], ["fields", "studio.field"]]) {
      for (const name of this.names(`/${group}`)) {
        rows.push({ at: pointer(group, name, "labels"), kind: t(kind), name });
        if (group === "fields") rows.push({ at: pointer(group, name, "help"), kind: t("studio.field_help"), name, help: true });
        for (const choice of group === "fields" ? this.get(pointer(group, name, "choices")) ?? [] : []) {
          rows.push({ at: pointer(group, name, "choice_labels", choice), kind: t("studio.choice"), name: `${name} = ${choice}` });
        }
      }
    }
    return rows;
  },

  // -- decision tables ---------------------------------------------------------------------

  addRow(table) {
    const inputs = this.get(pointer("decision_tables", table, "inputs")) ?? [];
    this.addItem(pointer("decision_tables", table, "rows"), { when: inputs.map(() => ""), then: {} });
  },

  // -- notifications -----------------------------------------------------------------------

  recipientKind(at) {
    return Object.keys(this.get(at) ?? {})[0] ?? "role";
  },

  setRecipientKind(at, kind) {
    setAt(this.doc, at, { [kind]: kind === "assignee" ? true : "" });
    this.changed();
  },

  // -- SLAs and the calendar ---------------------------------------------------------------

  weekDays() {
    return DAYS;
  },

  addCalendar() {
    const hours = Object.fromEntries(DAYS.slice(0, 5).map((day) => [day, ["09:00-17:00"]]));
    setAt(this.doc, "/calendar", { timezone: "Europe/Paris", hours, holidays: [], day_length: "8h" });
    this.changed();
  },

  // -- views per role ----------------------------------------------------------------------

  roles() {
    return ROLES;
  },

  hasView(role) {
    return this.get(pointer("views", role)) !== undefined;
  },

  toggleView(role, on) {
    setAt(this.doc, pointer("views", role), on ? { see: "all", edit: "none" } : undefined);
    this.changed();
  },

  /** Whether `role` sees (kind "see") or edits ("edit") `field` under its view. */
  viewHas(role, kind, field) {
    const value = this.get(pointer("views", role, kind)) ?? (kind === "see" ? "all" : "none");
    return value === "all" || (Array.isArray(value) && value.includes(field));
  },

  setView(role, kind, field, on) {
    const fields = this.names("/fields");
    const chosen = fields.filter((name) => (name === field ? on : this.viewHas(role, kind, name)));
    const value = chosen.length === fields.length ? "all" : chosen.length ? chosen : "none";
    setAt(this.doc, pointer("views", role, kind), value);
    this.changed();
  },

  // -- YAML --------------------------------------------------------------------------------

  showYaml() {
    this.yamlText = toYaml(this.doc);
    this.yamlError = null;
    this.lines = yamlLines(this.yamlText);
  },

  yamlEdited() {
    const read = fromYaml(this.yamlText);
    this.lines = yamlLines(this.yamlText);
    this.yamlError = read.error ?? null;
    if (read.error) return;
    this.doc = read.document;
    this.schedule();
  },

  yamlLineNumbers() {
    return this.yamlText.split("\n").map((_, index) => index + 1);
  },

  problemsOnLine(line) {
    const problems = this.issues.filter((issue) => lineOf(this.lines, issue.at) === line).map((issue) => issue.message);
    if (this.yamlError?.line === line) problems.push(this.yamlError.message);
    return problems;
  },

  // -- validation as you type --------------------------------------------------------------

  changed() {
    if (this.tab !== "yaml") this.showYaml();
    this.schedule();
  },

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), CHECK_DELAY_MS);
    this.scheduleRun();
  },

  async check() {
    const asked = JSON.stringify(this.doc);
    this.checking = true;
    try {
      const report = await send("/case-types/check", "POST", this.doc);
      if (asked !== JSON.stringify(this.doc)) return; // typed since: a newer check follows
      this.issues = (report.issues ?? report.problems.map((message) => ({ path: "", message }))).map((issue) => ({
        ...issue,
        at: issue.pointer ?? pathToPointer(issue.path),
      }));
      this.checked = true;
    } catch (error) {
      // 404, or 405 where the route is not there yet (POST /case-types/check: part A)
      if (error instanceof ApiError && (error.unavailable || error.status === 405)) this.checkMissing = true;
      else this.issues = [{ at: "", path: "", message: error.message, hint: error.hint }];
    } finally {
      this.checking = false;
    }
  },

  problemsAt(at) {
    return this.issues.filter((issue) => issue.at === at);
  },

  problemsIn(tab) {
    return this.issues.filter((issue) => tabOf(issue.at) === tab).length;
  },

  checkText() {
    if (this.checkMissing) return t("studio.check_missing");
    if (this.yamlError) return t("studio.yaml_error", { line: this.yamlError.line });
    if (this.checking && !this.checked) return t("studio.checking");
    return this.issues.length ? t("studio.problems_count", { count: this.issues.length }) : t("studio.no_problems");
  },

  place(issue) {
    return readablePath(issue.at) || t("studio.document");
  },

  /** Show where a problem is: its tab, and its control (or YAML line) focused. */
  goTo(issue) {
    this.tab = tabOf(issue.at);
    Alpine.nextTick(() => {
      if (this.tab === "yaml") return this.selectLine(lineOf(this.lines, issue.at));
      const control = document.querySelector(`#studio-editor [data-pointer="${CSS.escape(issue.at)}"]`);
      control?.focus();
      control?.scrollIntoView({ block: "center" });
    });
  },

  selectLine(line) {
    const area = document.getElementById("yaml-text");
    const starts = this.yamlText.split("\n").slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
    area.focus();
    area.setSelectionRange(starts, starts + (this.yamlText.split("\n")[line - 1] ?? "").length);
  },

  switchTab(tab) {
    if (this.tab === "yaml" && tab !== "yaml") {
      this.yamlEdited(); // what was typed in the last moments, before the forms show it
      if (!this.yamlError) this.showYaml();
    }
    this.tab = tab;
    if (tab === "review") this.loadHistory();
  },

  // -- the diff against the published version ----------------------------------------------

  changes() {
    if (!this.published) return [];
    return diff(this.published, this.doc).map((change) => ({
      ...change,
      path: readablePath(change.at),
      before: inline(change.before),
      after: inline(change.after),
    }));
  },

  // -- saving ------------------------------------------------------------------------------

  /** Save the document into this draft (PUT), unless nothing changed. */
  async save() {
    if (!this.dirty()) return true;
    this.saving = true;
    try {
      const saved = await attempt(() =>
        api(`/case-types/${this.name}/versions/${this.version}?reason=${encodeURIComponent(t("studio.saved_reason"))}`, { method: "PUT", body: this.doc }),
      );
      if (saved === undefined) return false;
      this.saved = JSON.stringify(this.doc);
      await this.load();
      return true;
    } finally {
      this.saving = false;
    }
  },

  /** Throw this draft away (DELETE, with the reason typed in the confirmation), then back to
   * the list: it is in no list any more. */
  async discard() {
    const reason = encodeURIComponent(this.discardReason.trim());
    const done = await attempt(() => api(`/case-types/${this.name}/versions/${this.version}?reason=${reason}`, { method: "DELETE" }));
    if (done) window.location.assign("/ui/studio");
  },

  /** A new draft from this version's document, opened in the studio. */
  async newDraft() {
    const created = await attempt(() => api(`/case-types?reason=${encodeURIComponent(t("studio.new_draft_reason", { version: this.version }))}`, { method: "POST", body: this.doc }));
    if (created) window.location.assign(`/ui/studio/${created.name}/${created.version}`);
  },
});

start("studio", studio);
