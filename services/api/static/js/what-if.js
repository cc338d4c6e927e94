// The what-if report as table rows, for the case-type page and the studio: one row per
// attribute a recorded case would end with differently under the draft, one per recorded
// command the draft would refuse.
import { priorityLabel, statusLabel, t } from "./app.js";

/** The notifications a case would request, as text. */
export function notificationsText(notifications) {
  return notifications.map((sent) => t("what_if.notified", { notification: sent.notification, to: sent.recipients.join(", ") || "—" })).join("; ") || "—";
}

/** The rows of one case the draft would change. */
export function whatIfRows(item, document) {
  const rows = item.differences.map((attribute) => ({
    attribute,
    attributeText: t(`what_if.attr_${attribute}`),
    recorded: shown(attribute, item.recorded, document),
    wouldBe: item.would_be ? shown(attribute, item.would_be, document) : t("what_if.not_opened"),
  }));
  for (const refusal of item.refused) {
    rows.push({ attribute: "refused", attributeText: t("what_if.attr_refused"), recorded: refusal.command, wouldBe: refusal.reason });
  }
  return rows.map((row, index) => ({ ...row, key: `${item.case_id}-${index}`, caseId: item.case_id, title: index ? "" : item.title, first: index === 0 }));
}

function shown(attribute, outcome, document) {
  const value = outcome[attribute];
  if (attribute === "status") return statusLabel(value, document);
  if (attribute === "priority") return priorityLabel(value);
  if (attribute === "sla_breaches") return value.join(", ") || "—";
  if (attribute === "notifications") return notificationsText(value);
  return value ?? "—";
}
