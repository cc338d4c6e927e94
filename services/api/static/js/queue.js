// The handler's work queue: my cases, and the unassigned cases of my queues, most urgent first.
import { Alpine, api, attempt, optional, remembered, start } from "./app.js";
import { byUrgency, caseRows } from "./rows.js";

const LIMIT = 200; // the most urgent cases of each list

// Open cases, nearest SLA deadline first (the case list sorts, and each row carries its
// sla_deadline for the time left; byUrgency breaks ties by priority).
const listed = (query) => api(`/cases?${new URLSearchParams({ ...query, final: "false", sort: "sla_deadline", limit: String(LIMIT) })}`);

const queue = () => ({
  ...caseRows(),
  loading: true,
  partial: false,
  limit: LIMIT,
  mine: [],
  pool: [],
  knownQueues: [],
  myQueues: remembered.get("queues", []),

  get me() {
    return Alpine.store("app").me;
  },

  init() {
    this.load();
  },

  async load() {
    this.loading = true;
    await attempt(() => Promise.all([this.loadMine(), this.loadPool(), this.loadQueues()]));
    this.loading = false;
  },

  async loadMine() {
    const page = await listed({ assignee: this.me.actor_id });
    await this.learn(page.cases);
    this.mine = page.cases.sort(byUrgency);
  },

  queues() {
    return this.me.queues ?? this.myQueues;
  },

  async loadPool() {
    const queues = this.queues();
    const unassigned = { unassigned: "true" };
    const pages = await Promise.all(queues.length ? queues.map((queue) => listed({ ...unassigned, queue })) : [listed(unassigned)]);
    const cases = pages.flatMap((page) => page.cases);
    await this.learn(cases);
    this.partial = pages.some((page) => page.next_cursor);
    this.pool = cases.sort(byUrgency);
    this.remember(cases.map((c) => c.queue));
  },

  async loadQueues() {
    const counts = await optional("/read-models/counts?by=queue");
    this.remember((counts?.items ?? []).map((item) => item.key));
  },

  remember(queues) {
    const known = new Set([...this.knownQueues, ...this.myQueues, ...queues.filter(Boolean)]);
    this.knownQueues = [...known].sort();
  },

  toggleQueue(queue) {
    const chosen = new Set(this.myQueues);
    if (chosen.has(queue)) chosen.delete(queue);
    else chosen.add(queue);
    this.myQueues = [...chosen].sort();
    remembered.set("queues", this.myQueues);
    attempt(() => this.loadPool());
  },
});

start("queue", queue);
