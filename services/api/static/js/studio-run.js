// The case-type studio's runs and review, mixed into the editor's component (studio-editor.js):
// the draft tried on recorded cases (what-if), and four eyes: submit for review, approve or
// reject with a comment, publish; the case type's history with actor and reason.
import { rightsOf } from "./studio-rights.js";
import { Alpine, ApiError, api, attempt, caseTypeDocument, number, priorityLabel, send, show, statusLabel, t, when } from "./app.js";
import { fieldForm, readValues, withoutBlanks } from "./fields.js";
import { notificationsText, whatIfRows as differingRows } from "./what-if.js";

const PREVIEW_DELAY_MS = 600;
const OUTCOME = ["status", "queue", "priority", "assignee", "sla_breaches", "notifications"];


export const runMethods = () => ({
  days: 30,
  running: false,
  whatIf: null,
  whatIfRows: [],
  history: [],
  comment: "",
  busy: false,
  previewAvailable: true,
  previews: {},
  sampleTitle: "",
  sampleHorizon: "1h", // how long after opening the sample runs (SLA milestones within it)
  sampleForm: [],
  sampleError: null,
  sampleRows: [],
  previewTimer: null,

  async loadRun() {
    if (this.tab === "review") await this.loadHistory();
    if (!this.sampleForm.length) await this.loadSample();
  },

  // -- the sample case: notification previews, and a run under the draft -------------------

  /** The sample starts as the newest recorded case of this type (blank when there is none). */
  async loadSample() {
    let values = {};
    try {
      const listed = await api(`/cases?case_type=${this.name}&limit=1`);
      const newest = listed.cases[0];
      if (newest) {
        values = (await api(`/cases/${newest.id}`)).fields ?? {};
        this.sampleTitle = newest.title;
      }
    } catch {
      values = {}; // no recorded case to start from: the sample starts blank
    }
    this.sampleTitle ||= t("studio.sample_title");
    this.sampleForm = fieldForm(this.doc, Object.keys(this.doc.fields ?? {}), values);
    this.scheduleRun();
  },

  sample() {
    return { title: this.sampleTitle, fields: withoutBlanks(readValues(this.sampleForm)), horizon: this.sampleHorizon };
  },

  scheduleRun() {
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.runSample(), PREVIEW_DELAY_MS);
  },

  /** The sample under the document as it is in the page (POST /case-types/simulate), and
   * under the published version, side by side; the notifications' previews come from it. */
  async runSample() {
    if (!this.sampleForm.length || this.yamlError || this.issues.length) return;
    const asked = JSON.stringify([this.doc, this.sample()]);
    try {
      const sample = this.sample();
      const [draft, published] = await Promise.all([
        send("/case-types/simulate", "POST", { document: this.doc, sample }),
        this.current ? send(`/case-types/${this.name}/versions/${this.current}/simulate`, "POST", sample).catch(() => null) : null,
      ]);
      if (asked !== JSON.stringify([this.doc, this.sample()])) return; // a newer run follows
      this.previews = Object.fromEntries(draft.notifications.map((sent) => [sent.notification, sent]));
      this.sampleRows = OUTCOME.map((attribute) => {
        const now = outcomeOf(published, attribute, this.published);
        const then = outcomeOf(draft, attribute, this.doc);
        return { attribute, text: t(`what_if.attr_${attribute}`), published: now, draft: then, differs: published !== null && now !== then };
      });
      this.sampleError = null;
    } catch (error) {
      if (error instanceof ApiError && (error.unavailable || error.status === 405)) this.previewAvailable = false;
      else this.sampleError = error.message;
    }
  },

  preview(name) {
    return this.previews[name] ?? null;
  },

  // -- what-if on recorded cases -----------------------------------------------------------

  async runWhatIf() {
    this.running = true;
    try {
      if (!(await this.save())) return;
      await attempt(async () => {
        const report = await send(`/case-types/${this.name}/versions/${this.version}/what-if`, "POST", { days: Number(this.days) });
        const document = await caseTypeDocument(this.name, report.version);
        this.whatIfRows = report.cases.flatMap((item) => differingRows(item, this.doc ?? document));
        this.whatIf = report;
      });
    } finally {
      this.running = false;
    }
  },

  whatIfSummary() {
    return t("what_if.summary", { differing: number(this.whatIf.differing), compared: number(this.whatIf.compared) });
  },

  // -- four eyes ---------------------------------------------------------------------------

  rights() {
    return rightsOf(Alpine.store("app").me);
  },

  review() {
    return this.record?.review ?? "draft";
  },

  reviewText() {
    if (this.status() !== "draft") return t(`studio.status_${this.status()}`);
    return t(`studio.review_${this.review()}`);
  },

  /** Whoever saved or submitted the draft may not approve it (four eyes). */
  ownDraft() {
    const me = Alpine.store("app").me?.actor_id;
    return [...(this.record?.editors ?? [this.record?.author]), this.record?.submitted_by].includes(me);
  },

  maySubmit() {
    return this.status() === "draft" && this.rights().includes("author") && ["draft", "rejected"].includes(this.review());
  },

  mayReview() {
    return this.status() === "draft" && this.rights().includes("review") && this.review() === "submitted" && !this.ownDraft();
  },

  mayPublish() {
    return this.status() === "draft" && this.rights().includes("publish") && ["approved", "waived"].includes(this.review());
  },

  async step(action) {
    if (action === "submit" && !(await this.save())) return;
    this.busy = true;
    const body = action === "publish" ? { reason: this.comment } : { comment: this.comment };
    const done = await attempt(() => send(`/case-types/${this.name}/versions/${this.version}/${action}`, "POST", body));
    this.busy = false;
    if (done === undefined) return;
    this.comment = "";
    await this.load();
    await this.loadHistory();
  },

  async loadHistory() {
    const events = await attempt(() => api(`/case-types/${this.name}/history`));
    if (events) this.history = events.slice().reverse(); // newest first
  },

  eventText(event) {
    const text = t(`studio.event_${event.type}`);
    return event.version ? `${text} · v${event.version}` : text;
  },

  eventWhen(event) {
    return when(event.recorded_at);
  },

  eventWhy(event) {
    return event.comment ?? event.reason ?? (event.problems?.length ? event.problems.join("; ") : "");
  },
});

/** One attribute of a simulated case's end, as text. */
function outcomeOf(result, attribute, document) {
  if (!result) return "—";
  const { case: end } = result;
  if (attribute === "status") return statusLabel(end.status, document);
  if (attribute === "priority") return priorityLabel(end.priority);
  if (attribute === "sla_breaches") return result.sla_breaches.map((breach) => breach.sla).join(", ") || "—";
  if (attribute === "notifications") return notificationsText(result.notifications);
  return show(end[attribute]);
}

