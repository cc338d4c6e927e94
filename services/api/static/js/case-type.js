// A case type: its versions (who drafted and published each, why) and, for a draft, "What
// if?": recorded cases of the last days replayed under the draft, in memory on the server
// (POST /case-types/{name}/versions/{version}/what-if), and the cases that would differ.
import { Alpine, api, attempt, caseTypeDocument, caseTypes, number, priorityLabel, send, start, statusLabel, t } from "./app.js";

const name = () => decodeURIComponent(window.location.pathname.split("/").filter(Boolean).pop());

const caseTypePage = () => ({
  name: name(),
  title: "",
  current: null,
  versions: [],
  draft: "",
  days: 30,
  running: false,
  report: null,
  rows: [],

  init() {
    this.load();
  },

  get drafts() {
    return this.versions.filter((row) => row.status === "draft");
  },

  async load() {
    await attempt(async () => {
      const [listed, shown] = await Promise.all([caseTypes(), api(`/case-types/${this.name}`)]);
      this.title = listed.find((type) => type.name === this.name)?.label ?? this.name;
      this.current = shown.current_version;
      this.versions = shown.versions.slice().reverse(); // newest first
      if (!this.drafts.some((row) => String(row.version) === this.draft)) this.draft = String(this.drafts[0]?.version ?? "");
      if (this.report) await this.show(this.report); // a language change redraws the labels
    });
  },

  mayTry() {
    return Alpine.store("app").me?.role === "admin";
  },

  versionStatus(row) {
    const status = t(`case_type.status_${row.status}`);
    return row.version === this.current ? `${status} · ${t("case_type.current")}` : status;
  },

  run() {
    this.running = true;
    return attempt(async () => {
      const report = await send(`/case-types/${this.name}/versions/${this.draft}/what-if`, "POST", { days: Number(this.days) });
      await this.show(report);
    }).finally(() => {
      this.running = false;
    });
  },

  async show(report) {
    const document = await caseTypeDocument(this.name, report.version);
    this.rows = report.cases.flatMap((item) => caseRows(item, document));
    this.report = report;
  },

  summary() {
    return t("what_if.summary", { differing: number(this.report.differing), compared: number(this.report.compared) });
  },

  countsText() {
    const counts = Object.entries(this.report.by_attribute).filter(([, count]) => count);
    return counts.map(([attribute, count]) => `${t(`what_if.attr_${attribute}`)}: ${number(count)}`).join(" · ");
  },
});

/** The table rows of one differing case: one per attribute that differs, one per refusal. */
function caseRows(item, document) {
  const rows = item.differences.map((attribute) => ({
    attribute,
    attributeText: t(`what_if.attr_${attribute}`),
    recorded: shown(attribute, item.recorded, document),
    wouldBe: item.would_be ? shown(attribute, item.would_be, document) : t("what_if.not_opened"),
  }));
  for (const refusal of item.refused) {
    rows.push({ attribute: "refused", attributeText: t("what_if.attr_refused"), recorded: refusal.command, wouldBe: refusal.reason });
  }
  return rows.map((row, index) => ({ ...row, caseId: item.case_id, title: index ? "" : item.title, first: index === 0 }));
}

function shown(attribute, outcome, document) {
  const value = outcome[attribute];
  if (attribute === "status") return statusLabel(value, document);
  if (attribute === "priority") return priorityLabel(value);
  if (attribute === "sla_breaches") return value.join(", ") || "—";
  if (attribute === "notifications") {
    return value.map((sent) => t("what_if.notified", { notification: sent.notification, to: sent.recipients.join(", ") || "—" })).join("; ") || "—";
  }
  return value ?? "—";
}

start("caseTypePage", caseTypePage);
