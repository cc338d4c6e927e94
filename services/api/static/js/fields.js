// The inputs of a case type's fields (services/api/pages/_fields.html draws them): one
// descriptor per field, read back into the values the API takes; a blank input means unset.
import { t } from "./app.js";

const OWN_INPUTS = ["choice", "money", "boolean", "date", "number", "json"]; // the rest: a text box
const isBlank = (value) => value === "" || value === null || value === undefined;

function descriptor(name, spec, value, opening) {
  const kind = spec.type ?? "text";
  return {
    name,
    kind,
    textual: !OWN_INPUTS.includes(kind),
    labels: spec.labels ?? {},
    help: spec.help ?? {}, // a hint under the input, per language
    required: Boolean(spec.required),
    enforce: Boolean(opening && spec.required), // the browser insists only when opening
    choices: (spec.choices ?? []).map((choice) => ({ value: choice, labels: spec.choice_labels?.[choice] ?? {} })),
    currencies: spec.currencies ?? [],
    value: kind === "money" || kind === "boolean" || isBlank(value) ? "" : String(value),
    amount: kind === "money" && !isBlank(value?.amount) ? String(value.amount) : "",
    currency: value?.currency ?? spec.currencies?.[0] ?? "EUR",
    checked: value === true,
    initial: value ?? null,
  };
}

/** Inputs for the declared fields `names` of a case type document, filled from `values`;
 * a case type with extra_fields also gets a JSON box for its undeclared fields. */
export function fieldForm(document, names, values = {}, { opening = false } = {}) {
  const form = names.map((name) => descriptor(name, document.fields?.[name] ?? {}, values[name], opening));
  if (document.extra_fields) {
    const declared = new Set(Object.keys(document.fields ?? {}));
    const extra = Object.fromEntries(Object.entries(values).filter(([name]) => !declared.has(name)));
    const text = JSON.stringify(extra);
    form.push({ ...descriptor("*", { type: "json" }, text, false), initial: extra });
  }
  return form;
}

function readJson(field) {
  let parsed;
  try {
    parsed = JSON.parse(field.value || "{}");
  } catch {
    parsed = null;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(t("fields.json_object"));
  }
  const removed = Object.keys(field.initial ?? {}).filter((name) => !(name in parsed));
  return { ...parsed, ...Object.fromEntries(removed.map((name) => [name, null])) };
}

function read(field) {
  switch (field.kind) {
    case "boolean": // unset stays unset until ticked
      return field.checked || field.initial !== null ? field.checked : null;
    case "money":
      return isBlank(field.amount) ? null : { amount: Number(field.amount), currency: field.currency };
    case "number":
      return isBlank(field.value) ? null : Number(field.value);
    default:
      return isBlank(field.value) ? null : field.value;
  }
}

/** Every value of the form, blanks as null. */
export function readValues(form) {
  const values = {};
  for (const field of form) {
    if (field.kind === "json") Object.assign(values, readJson(field));
    else values[field.name] = read(field);
  }
  return values;
}

export const withoutBlanks = (values) => Object.fromEntries(Object.entries(values).filter(([, v]) => v !== null));

const canonical = (v) => (Array.isArray(v) ? v.map(canonical)
  : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])])) : v);
const same = (a, b) => JSON.stringify(canonical(a ?? null)) === JSON.stringify(canonical(b ?? null));

/** The values of the form that differ from `current` (what a PATCH should send). */
export function changedValues(form, current) {
  return Object.fromEntries(Object.entries(readValues(form)).filter(([name, value]) => !same(value, current[name])));
}
