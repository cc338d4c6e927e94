// What every dashboard page shares: the API client, the language catalogs and their one lookup
// function (t), dates and numbers in the chosen language and the browser's time zone, and the
// header (who is signed in, in which role; language; navigation). Each page registers its own
// Alpine component with start(); the pages are declarative HTML (services/api/pages/).
import Alpine from "../vendor/alpinejs-csp-3.17.4.esm.min.js";

export { Alpine };
window.Alpine = Alpine; // for the browser console

const KEY = "caseledger-key"; // sessionStorage: the key is forgotten with the tab
const LANGUAGE = "caseledger-language"; // localStorage: the language is remembered
export const LANGUAGES = ["en", "fr"];
export const PRIORITIES = ["urgent", "high", "normal", "low"]; // most urgent first

const app = () => Alpine.store("app");

// -- the language catalogs (static/i18n/{en,fr}.json) --------------------------------------

const catalogs = {};

async function catalog(language) {
  if (!catalogs[language]) {
    const answer = await fetch(`/ui/assets/i18n/${language}.json`);
    catalogs[language] = await answer.json();
  }
  return catalogs[language];
}

/** The one lookup: the text of `key` in the chosen language, `{name}` replaced from `values`.
 * A key missing from the catalog shows as itself, so a gap is visible, never blank. */
export function t(key, values = {}) {
  const text = app().catalog[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A case type's own label (states, fields, transitions) in the chosen language. */
export function label(labels, fallback) {
  return labels?.[app().language] ?? labels?.en ?? fallback;
}

export const priorityLabel = (priority) => t(`priority.${priority}`);

// -- dates and numbers: the browser's time zone, the chosen language's formats -------------

const locale = () => t("meta.locale");
const formats = new Map();

/** A date format of the chosen language, made once. */
function dateFormat(options) {
  const key = `${locale()} ${JSON.stringify(options)}`;
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat(locale(), options));
  return formats.get(key);
}

/** An instant (ISO 8601 with a zone) as a date and time in the browser's time zone. */
export function when(iso) {
  return iso ? dateFormat({ dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)) : "—";
}

/** A calendar date (YYYY-MM-DD), without shifting it through a time zone. */
export function day(isoDate) {
  if (!isoDate) return "—";
  const [year, month, date] = isoDate.slice(0, 10).split("-").map(Number);
  return dateFormat({ dateStyle: "medium", timeZone: "UTC" }).format(new Date(Date.UTC(year, month - 1, date)));
}

/** The hour of an instant, in the browser's time zone. */
export const hour = (iso) => dateFormat({ hour: "2-digit", minute: "2-digit" }).format(new Date(iso));

export const timeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

export function number(value) {
  return value === null || value === undefined ? "—" : new Intl.NumberFormat(locale()).format(value);
}

/** A duration in seconds, as the two largest units ("2 d 3 h", "45 min"); negative: overdue. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const units = [["d", 86400], ["h", 3600], ["min", 60]];
  let rest = Math.abs(Math.round(seconds));
  const parts = [];
  for (const [unit, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${number(Math.floor(rest / size))} ${t(`unit.${unit}`)}`);
      rest %= size;
    }
  }
  const text = parts.length ? parts.join(" ") : `${number(rest)} ${t("unit.s")}`;
  return seconds < 0 ? t("time.overdue", { duration: text }) : text;
}

/** An SLA milestone in words: warning:75, goal, deadline. */
export function milestone(name) {
  const [kind, percent] = String(name).split(":");
  return t(`sla.${kind}`, { percent });
}

const isMoney = (value) => value && typeof value === "object" && "amount" in value && "currency" in value;

/** A field value as people read it: money with its currency, yes/no, dates, lists. */
export function show(value, spec) {
  if (value === null || value === undefined || value === "") return "—";
  if (isMoney(value)) {
    return new Intl.NumberFormat(locale(), { style: "currency", currency: value.currency })
      .format(value.amount);
  }
  if (typeof value === "boolean") return t(value ? "value.yes" : "value.no");
  if (spec?.type === "date") return day(value);
  if (typeof value === "number") return number(value);
  if (Array.isArray(value)) return value.map((v) => show(v)).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// -- the API -------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(body?.detail ?? fallback);
    this.status = status;
    this.code = body?.code;
    this.hint = body?.hint;
    this.problems = body?.problems ?? [];
  }

  /** A route this server does not have yet (another part of issue 11 adds it). */
  get unavailable() {
    return this.status === 404 && this.code === "http_404";
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${app().key}`, "Accept-Language": app().language };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    if (answer.status === 401 && app().key) signOut(json?.detail);
    throw new ApiError(answer.status, json, `${answer.status} ${answer.statusText}`);
  }
  return json;
}

export const send = (path, method, body) => api(path, { method, body });

/** The answer of a route that may not exist yet: null when it does not (404 http_404). */
export async function optional(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error instanceof ApiError && error.unavailable) return null;
    throw error;
  }
}

export function showError(error) {
  app().error = error
    ? { message: String(error.message ?? error), hint: error.hint ?? "", problems: error.problems ?? [] }
    : null;
}

/** Run `work`; show what went wrong in the banner instead of failing silently. */
export async function attempt(work) {
  showError(null);
  try {
    return await work();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

// -- who is signed in ----------------------------------------------------------------------

/** Who the key belongs to: {role, role_label, actor_id, key_label}; 401 if no key's. */
const whoAmI = () => api("/me");

function signOut(reason) {
  sessionStorage.removeItem(KEY);
  app().key = null;
  app().me = null;
  if (reason) showError({ message: reason });
}

// -- the header ----------------------------------------------------------------------------

const shell = () => ({
  health: null,
  keyInput: "",

  async init() {
    this.checkHealth();
    setInterval(() => this.checkHealth(), 15_000);
  },

  get signedIn() {
    return Boolean(app().key && app().me);
  },

  get who() {
    const me = app().me;
    return me ? t("header.signed_in_as", { actor: me.actor_id, role: me.role_label }) : "";
  },

  get healthText() {
    if (this.health === null) return t("health.checking");
    return t(this.health ? "health.up" : "health.down");
  },

  get zone() {
    return timeZone();
  },

  mayOpenCases() {
    return Boolean(app().me) && app().me.role !== "auditor";
  },

  current(page) {
    return document.body.dataset.page === page ? "page" : null;
  },

  async checkHealth() {
    try {
      this.health = (await fetch("/health")).ok;
    } catch {
      this.health = false;
    }
  },

  async signIn() {
    app().key = this.keyInput.trim();
    this.keyInput = "";
    const me = await attempt(whoAmI);
    if (!me) {
      app().key = null;
      return;
    }
    sessionStorage.setItem(KEY, app().key);
    window.location.reload(); // every component starts again, signed in
  },

  signOut() {
    signOut();
  },

  async changeLanguage() {
    const language = app().language;
    localStorage.setItem(LANGUAGE, language);
    app().catalog = await catalog(language);
    document.documentElement.lang = language;
    const me = await attempt(whoAmI); // the role's label, in the new language
    if (me) app().me = me;
    window.dispatchEvent(new CustomEvent("language-changed"));
  },
});

/** Start a page: load the catalog and who is signed in, then Alpine with the page's
 * component `name` (its data and methods: `component`). */
export async function start(name, component) {
  const language = LANGUAGES.includes(localStorage.getItem(LANGUAGE)) ? localStorage.getItem(LANGUAGE) : "en";
  document.documentElement.lang = language;
  Alpine.store("app", { key: sessionStorage.getItem(KEY), language, catalog: await catalog(language), me: null, error: null });
  Alpine.magic("t", () => t);
  Alpine.magic("label", () => label);
  Alpine.data("shell", shell);
  Alpine.data(name, component);
  if (app().key) app().me = (await attempt(whoAmI)) ?? null;
  if (!app().me) app().key = null;
  Alpine.start();
}

// -- small helpers the pages share ---------------------------------------------------------

export function pageParams() {
  return new URLSearchParams(window.location.search);
}

/** Remember something for this browser (saved views, chosen queues). */
export const remembered = {
  get: (name, fallback) => {
    try {
      return JSON.parse(localStorage.getItem(`caseledger-${name}`)) ?? fallback;
    } catch {
      return fallback;
    }
  },
  set: (name, value) => localStorage.setItem(`caseledger-${name}`, JSON.stringify(value)),
};

const documents = new Map();

/** A case type version's document (states, fields, transitions and their labels). */
export async function caseTypeDocument(name, version) {
  const key = `${name}@${version}`;
  if (!documents.has(key)) documents.set(key, api(`/case-types/${name}/versions/${version}`).then((v) => v.document));
  return documents.get(key);
}

/** The case types, each with its label in the chosen language. */
export const caseTypes = () => api("/case-types");

/** A status as people read it: the state's label in its case type, or "Closed". */
export function statusLabel(status, document) {
  if (status === "closed") return t("status.closed");
  return label(document?.states?.[status]?.labels, status);
}
