// Stand-ins for what other parts of issue 11 add to the API, used only while a server lacks
// them: GET /cases/{id} without `actions` or with transitions lacking `enabled`, and no
// GET /cases/{id}/timeline. Delete each once every server has it.
import { statusLabel, t } from "./app.js";

// services/auth.py: who may work, update and reopen cases (the server still decides).
const WORK = ["admin", "manager", "handler"];
const UPDATE = [...WORK, "integrator"];
const REOPEN = ["admin", "manager"];

/** What the role may do with the case, as GET /cases/{id} says under `actions`. */
export function actionsFor(c, role) {
  const closed = c.status === "closed";
  return {
    assign: !closed && WORK.includes(role),
    close: !closed && WORK.includes(role),
    reopen: closed && REOPEN.includes(role),
    edit_fields: !closed && UPDATE.includes(role),
    add_note: UPDATE.includes(role),
  };
}

/** Transitions with `enabled`, `reason` and `to_label`, as newer servers send them. */
export function transitionsFor(c, role, document) {
  return c.transitions.map((transition) => ({
    to_label: statusLabel(transition.to, document),
    enabled: UPDATE.includes(role),
    reason: UPDATE.includes(role) ? null : t("case.role_may_not"),
    ...transition,
  }));
}

/** The history (GET /cases/{id}/history) in the timeline's shape, told plainly. */
export function timelineFromHistory(history, c, document) {
  return history.map((entry) => {
    const data = entry.data;
    const kind = entry.type.replace(/^Case/, "");
    const changes = Object.entries(data.changes ?? {}).map(([field, after]) => ({
      field, label: c.labels.fields[field] ?? field, before: null, after,
    }));
    if (kind === "StatusChanged") {
      changes.push({
        field: "status", label: t("column.status"),
        before: statusLabel(data.from_status, document), after: statusLabel(data.to_status, document),
      });
    }
    if (kind === "Assigned") changes.push({ field: "assignee", label: t("column.assignee"), before: null, after: data.assignee });
    return {
      version: entry.version,
      at: entry.occurred_at,
      actor: entry.actor,
      kind: entry.type,
      sentence: t("timeline.fallback", { actor: entry.actor.id, kind: kind.replace(/([a-z])([A-Z])/g, "$1 $2") }),
      changes,
      rule: entry.rule ? { name: entry.rule, label: null } : null,
      sla: data.sla ? { name: data.sla, label: data.sla, milestone: data.milestone ?? null, due_at: data.due_at ?? null, due: data.due ?? {}, sentence: "" } : null,
      source: entry.source,
      withheld: entry.withheld,
    };
  });
}
