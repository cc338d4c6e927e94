// Search and lists: a search box (title, party or id), filters as labelled drop-downs built
// from the case types, "my cases", and saved views (kept in this browser's localStorage).
import { Alpine, PRIORITIES, api, attempt, caseTypeDocument, caseTypes, label, optional, pageParams, priorityLabel, remembered, start, t } from "./app.js";
import { DEFAULT_COLUMNS, caseRows } from "./rows.js";

const FILTERS = ["case_type", "status", "priority", "queue", "assignee", "final", "sla_state", "sort"];
const PAGE = 50;
const SLA_STATES = ["on_time", "at_risk", "breached"];
const SORTS = ["opened_at", "updated_at", "sla_deadline", "priority"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const blankFilters = () => Object.fromEntries(FILTERS.map((name) => [name, ""]));

const search = () => ({
  ...caseRows(),
  types: [],
  statusGroups: [],
  queues: [],
  assignees: [],
  q: "",
  filters: blankFilters(),
  cases: [],
  cursor: null,
  loading: false,
  asked: 0,
  views: remembered.get("views", []),
  viewName: "",

  init() {
    const params = pageParams();
    this.q = params.get("q") ?? "";
    for (const name of FILTERS) this.filters[name] = params.get(name) ?? "";
    this.load();
  },

  async load() {
    await attempt(async () => {
      this.types = await caseTypes();
      await this.loadStates();
      await this.loadChoices();
      await this.run();
    });
  },

  async loadStates() {
    const wanted = this.filters.case_type;
    const chosen = this.types.filter((type) => type.current_version && (!wanted || type.name === wanted));
    const groups = await Promise.all(chosen.map(async (type) => {
      const document = await caseTypeDocument(type.name, type.current_version);
      const states = Object.entries(document.states ?? {}).map(([name, state]) => ({ value: name, label: label(state.labels, name) }));
      return { label: type.label, states };
    }));
    if (wanted === this.filters.case_type) this.statusGroups = groups;
  },

  async loadChoices() {
    const [queues, assignees] = await Promise.all([optional("/read-models/counts?by=queue"), optional("/read-models/counts?by=assignee")]);
    this.queues = (queues?.items ?? []).map((item) => item.key).filter(Boolean);
    this.assignees = (assignees?.items ?? []).map((item) => item.key).filter(Boolean);
  },

  priorities() {
    return PRIORITIES.map((priority) => ({ value: priority, label: priorityLabel(priority) }));
  },

  slaStates() {
    return SLA_STATES.map((state) => ({ value: state, label: t(`sla_state.${state}`) }));
  },

  sorts() {
    return SORTS.map((sort) => ({ value: sort, label: t(`sort.${sort}`) }));
  },

  me() {
    return Alpine.store("app").me.actor_id;
  },

  query(cursor) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    for (const name of FILTERS) if (this.filters[name]) query.set(name, this.filters[name]);
    if (this.filters.assignee === "@me") query.set("assignee", this.me());
    if (this.filters.assignee === "@nobody") {
      query.delete("assignee");
      query.set("unassigned", "true");
    }
    if (this.q.trim()) query.set("q", this.q.trim());
    if (cursor) query.set("cursor", cursor);
    return query;
  },

  async run(append = false) {
    const ticket = ++this.asked; // answers to earlier questions are dropped
    this.loading = true;
    const text = this.q.trim();
    if (!append && UUID.test(text) && (await optional(`/cases/${text}`).catch(() => null))) {
      window.location.assign(`/ui/cases/${text}`);
      return;
    }
    this.keepInUrl();
    const page = await api(`/cases?${this.query(append ? this.cursor : null)}`);
    await this.learn(page.cases);
    if (ticket !== this.asked) return;
    this.columns = page.columns ?? DEFAULT_COLUMNS;
    this.cases = append ? [...this.cases, ...page.cases] : page.cases;
    this.cursor = page.next_cursor;
    const seen = page.cases.map((c) => c.queue).filter(Boolean);
    this.queues = [...new Set([...this.queues, ...seen])].sort();
    this.loading = false;
  },

  submit() {
    return attempt(() => this.run());
  },

  more() {
    return attempt(() => this.run(true));
  },

  async typeChanged() {
    this.filters.status = "";
    await attempt(async () => {
      await this.loadStates();
      await this.run();
    });
  },

  keepInUrl() {
    const shown = new URLSearchParams();
    if (this.q) shown.set("q", this.q);
    for (const name of FILTERS) if (this.filters[name]) shown.set(name, this.filters[name]);
    window.history.replaceState(null, "", `${window.location.pathname}?${shown}`);
  },

  // -- saved views (localStorage: this browser only) -----------------------------------------

  saveView() {
    const name = this.viewName.trim() || t("search.view_unnamed");
    this.views = [...this.views.filter((view) => view.name !== name), { name, q: this.q, filters: { ...this.filters } }];
    remembered.set("views", this.views);
    this.viewName = "";
  },

  async applyView(view) {
    this.q = view.q;
    this.filters = { ...blankFilters(), ...view.filters };
    await attempt(async () => {
      await this.loadStates();
      await this.run();
    });
  },

  forgetView(view) {
    this.views = this.views.filter((kept) => kept.name !== view.name);
    remembered.set("views", this.views);
  },

  myCases() {
    return this.applyView({ q: "", filters: { assignee: "@me" } });
  },
});

start("search", search);
