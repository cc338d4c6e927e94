// Who may do what with case types when the server does not say (GET /me's case_type_rights):
// the defaults of the settings CASELEDGER_CASE_TYPE_AUTHORS, _REVIEWERS and _PUBLISHERS.
export const AUTHORS = ["admin"];
export const REVIEWERS = ["admin", "manager"];
export const PUBLISHERS = ["admin"];

/** What `me` may do with case types: some of author, review, publish. */
export function rightsOf(me) {
  if (me?.case_type_rights) return me.case_type_rights;
  return [["author", AUTHORS], ["review", REVIEWERS], ["publish", PUBLISHERS]]
    .filter(([, roles]) => roles.includes(me?.role))
    .map(([right]) => right);
}
