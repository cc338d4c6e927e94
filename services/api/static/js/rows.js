// Case-list rows as the work queue and the search page show them (pages/_cases.html): labels,
// urgency, and the columns a role's view of a case type asks for.
import { PRIORITIES, caseTypeDocument, duration, label, priorityLabel, show, statusLabel, t, when } from "./app.js";

export const DEFAULT_COLUMNS = ["title", "case_type", "status", "priority", "queue", "assignee", "updated_at"];

/** Seconds until the nearest deadline of the case's running SLA clocks (negative: overdue),
 * or null when none runs (the list's `sla_deadline`). */
export const timeLeft = (c) => (c.sla_deadline ? (Date.parse(c.sla_deadline) - Date.now()) / 1000 : null);

const rank = (priority) => {
  const index = PRIORITIES.indexOf(priority);
  return index === -1 ? PRIORITIES.length : index;
};

/** Most urgent first: least SLA time left (rows without a running clock last), then the
 * highest priority; ties keep the server's order (sort=sla_deadline; Array.sort is stable). */
export function byUrgency(a, b) {
  const [left, right] = [timeLeft(a), timeLeft(b)];
  if (left !== null && right !== null && left !== right) return left - right;
  if ((left === null) !== (right === null)) return left === null ? 1 : -1;
  return rank(a.priority) - rank(b.priority);
}

/** The methods a component showing case rows mixes in; `documents` holds the case type
 * versions of the rows, for labels the list does not carry. */
export const caseRows = () => ({
  documents: {},
  columns: DEFAULT_COLUMNS,

  async learn(cases) {
    const wanted = [...new Set(cases.map((c) => `${c.case_type}@${c.case_type_version}`))];
    await Promise.all(wanted.filter((key) => !(key in this.documents)).map(async (key) => {
      const [name, version] = key.split("@");
      this.documents[key] = await caseTypeDocument(name, version);
    }));
  },

  documentOf(c) {
    return this.documents[`${c.case_type}@${c.case_type_version}`];
  },

  heading(column) {
    if (!column.startsWith("fields.")) return t(`column.${column}`);
    const name = column.slice(7);
    const specs = Object.values(this.documents).map((d) => d?.fields?.[name]).filter(Boolean);
    return label(specs[0]?.labels, name);
  },

  cell(c, column) {
    if (column.startsWith("fields.")) {
      const name = column.slice(7);
      return c.choice_labels?.[name] ?? show(c.fields[name], this.documentOf(c)?.fields?.[name]);
    }
    switch (column) {
      case "status": return c.status_label ?? statusLabel(c.status, this.documentOf(c));
      case "case_type": return c.case_type_label ?? label(this.documentOf(c)?.labels, c.case_type);
      case "priority": return priorityLabel(c.priority);
      case "opened_at": case "updated_at": return when(c[column]);
      default: return show(c[column]);
    }
  },

  urgency(c) {
    const left = timeLeft(c);
    if (left !== null) return left < 0 ? duration(left) : t("time.left", { duration: duration(left) });
    return c.sla_breaches ? t("sla.breaches", { count: c.sla_breaches }) : "";
  },

  urgent(c) {
    const left = timeLeft(c);
    return (left !== null && left < 0) || c.sla_breaches > 0;
  },

  link(c) {
    return `/ui/cases/${c.id}`;
  },
});
