// Open a new case of a case type, with the fields its current version declares.
import { attempt, caseTypeDocument, caseTypes, pageParams, send, start } from "./app.js";
import { fieldForm, readValues, withoutBlanks } from "./fields.js";

const newCase = () => ({
  types: [],
  caseType: pageParams().get("case_type") ?? "",
  title: "",
  partyId: "",
  form: [],

  init() {
    this.load();
  },

  async load() {
    await attempt(async () => {
      this.types = (await caseTypes()).filter((type) => type.current_version);
      if (!this.types.some((type) => type.name === this.caseType)) this.caseType = this.types[0]?.name ?? "";
      if (!this.form.length) await this.typeChanged(); // a language change keeps what was typed
    });
  },

  async typeChanged() {
    const type = this.types.find((candidate) => candidate.name === this.caseType);
    if (!type) return;
    const document = await caseTypeDocument(type.name, type.current_version);
    if (this.caseType !== type.name) return; // another type was chosen meanwhile
    this.form = fieldForm(document, Object.keys(document.fields ?? {}), {}, { opening: true });
  },

  open() {
    return attempt(async () => {
      const body = {
        case_type: this.caseType,
        title: this.title,
        fields: withoutBlanks(readValues(this.form)),
        party_id: this.partyId.trim() || null,
      };
      const opened = await send("/cases", "POST", body);
      window.location.assign(`/ui/cases/${opened.id}`);
    });
  },
});

start("newCase", newCase);
