// The case-type studio's first page (/ui/studio): the case types with their published version
// and drafts, a new draft from the published version, a new case type, and a draft discarded
// (with a reason); each opens in the editor (studio-editor.js).
import { Alpine, api, attempt, caseTypes, start, t } from "./app.js";
import { rightsOf } from "./studio-rights.js";

const studioList = () => ({
  types: [],
  newName: "",
  newLabel: "",
  discarding: null, // {name, version} of the draft whose discard is being confirmed
  discardReason: "",
  discarded: "",

  init() {
    this.load();
  },

  async load() {
    await attempt(async () => {
      const listed = await caseTypes();
      this.types = await Promise.all(
        listed.map(async (type) => {
          const shown = await api(`/case-types/${type.name}`);
          const drafts = shown.versions.filter((row) => row.status === "draft").reverse();
          return { name: type.name, label: type.label, current: shown.current_version, drafts };
        }),
      );
    });
  },

  mayAuthor() {
    return rightsOf(Alpine.store("app").me).includes("author");
  },

  draftText(draft) {
    return `v${draft.version} · ${t(`studio.review_${draft.review ?? "draft"}`)}`;
  },

  askDiscard(type, draft) {
    this.discarding = { name: type.name, version: draft.version };
    this.discardReason = "";
    this.discarded = "";
  },

  /** Throw the draft away (DELETE, with the reason typed), then list again without it. */
  async discard() {
    const { name, version } = this.discarding;
    const reason = encodeURIComponent(this.discardReason.trim());
    const done = await attempt(() => api(`/case-types/${name}/versions/${version}?reason=${reason}`, { method: "DELETE" }));
    if (!done) return;
    this.discarding = null;
    this.discarded = t("studio.discarded", { name, version });
    await this.load();
  },

  async newDraft(type) {
    await attempt(async () => {
      const shown = await api(`/case-types/${type.name}/versions/${type.current}`);
      const reason = t("studio.new_draft_reason", { version: type.current });
      const created = await api(`/case-types?reason=${encodeURIComponent(reason)}`, { method: "POST", body: shown.document });
      window.location.assign(`/ui/studio/${created.name}/${created.version}`);
    });
  },

  /** The smallest case type: two states, its name and English label. */
  async create() {
    const document = {
      name: this.newName.trim(),
      labels: { en: this.newLabel.trim() },
      states: { open: { initial: true, labels: { en: "Open" } }, done: { final: true, labels: { en: "Done" } } },
      transitions: { finish: { from: "open", to: "done", labels: { en: "Finish" } } },
    };
    await attempt(async () => {
      const created = await api(`/case-types?reason=${encodeURIComponent(t("studio.new_type_reason"))}`, { method: "POST", body: document });
      window.location.assign(`/ui/studio/${created.name}/${created.version}`);
    });
  },
});

start("studioList", studioList);
