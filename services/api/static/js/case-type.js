// A case type: its versions (who drafted and published each, why) and, for a draft, "What
// if?": recorded cases of the last days replayed under the draft, in memory on the server
// (POST /case-types/{name}/versions/{version}/what-if), and the cases that would differ.
import { Alpine, api, attempt, caseTypeDocument, caseTypes, number, send, start, t } from "./app.js";
import { whatIfRows } from "./what-if.js";

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
    this.rows = report.cases.flatMap((item) => whatIfRows(item, document));
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

start("caseTypePage", caseTypePage);
