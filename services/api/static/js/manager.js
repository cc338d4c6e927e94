// The manager dashboard: one panel per read model (issue 11's /read-models/* and
// /live-metrics), each drawn as a chart (Chart.js, window.Chart) with its numbers in a table
// below it. A read model this server does not have yet shows as "not available yet".
import { attempt, caseTypes, day, duration, hour, number, optional, start, t, when } from "./app.js";

const LIVE_EVERY_MS = 10_000; // the live metrics workers write about once a second
const charts = new Map(); // Chart.js objects stay out of Alpine's reactive state
const COLOURS = ["#2456a6", "#1f7a3a", "#c77700", "#a3242c", "#6b4fa3", "#2a8c8c", "#8a8a8a"];

const count = (value) => ({ text: number(value), value, numeric: true });
const text = (value) => ({ text: value ?? "—" });
const hours = (seconds) => Math.round((seconds / 3600) * 10) / 10;

/** A chart of `sets` ([name, values] each) over `labels`; counts get whole-number ticks. */
function series(labels, sets, { type = "bar", counts = true } = {}) {
  return {
    type,
    labels,
    datasets: sets.map(([name, data], index) => ({ label: name, data, backgroundColor: COLOURS[index], borderColor: COLOURS[index] })),
    counts,
  };
}

function counts(body) {
  const items = body.items;
  return {
    columns: ["manager.key", "manager.count"],
    rows: items.map((item) => [text(item.label ?? item.key), count(item.count)]),
    chart: series(items.map((item) => item.label ?? item.key ?? "—"), [[t("manager.count"), items.map((item) => item.count)]]),
  };
}

function slaList(body) {
  return {
    columns: ["column.title", "manager.sla", "manager.due", "manager.time_left", "column.assignee", "column.queue"],
    rows: body.items.map((item) => [
      { text: item.title, href: `/ui/cases/${item.case_id}` }, text(item.sla), text(when(item.due_at)), text(duration(item.time_left_s)),
      text(item.assignee), text(item.queue),
    ]),
  };
}

function cycleTimes(body) {
  const overall = body.items.filter((item) => !item.state && !item.month);
  const label = (item) => typeLabel(item.case_type);
  return {
    columns: ["column.case_type", "manager.state", "manager.month", "manager.p50", "manager.p90", "manager.p99", "manager.count"],
    rows: body.items.map((item) => [
      text(label(item)), text(item.state), text(item.month), text(duration(item.p50_s)), text(duration(item.p90_s)), text(duration(item.p99_s)), count(item.count),
    ]),
    chart: series(overall.map(label), ["p50", "p90", "p99"].map((p) => [`${t(`manager.${p}`)} (${t("unit.h")})`, overall.map((item) => hours(item[`${p}_s`]))]), { counts: false }),
  };
}

function throughput(body) {
  const items = body.items;
  const kinds = ["opened", "closed", "reopened"];
  return {
    columns: ["manager.day", ...kinds.map((kind) => `count.${kind}`)],
    rows: items.map((item) => [text(day(item.day)), ...kinds.map((kind) => count(item[kind]))]),
    chart: series(items.map((item) => day(item.day)), kinds.map((kind) => [t(`count.${kind}`), items.map((item) => item[kind])]), { type: "line" }),
  };
}

function workload(body) {
  const items = body.items;
  const kinds = ["open", "at_risk", "breached"];
  return {
    columns: ["manager.key", ...kinds.map((kind) => `count.${kind}`)],
    rows: items.map((item) => [text(item.label ?? item.key), ...kinds.map((kind) => count(item[kind]))]),
    chart: series(items.map((item) => item.label ?? item.key ?? "—"), kinds.map((kind) => [t(`count.${kind}`), items.map((item) => item[kind])])),
  };
}

function liveHours(body) {
  const byHour = new Map();
  for (const bucket of body.hours) {
    const sum = byHour.get(bucket.hour) ?? { opened: 0, closed: 0, breached: 0 };
    for (const kind of Object.keys(sum)) sum[kind] += bucket[kind];
    byHour.set(bucket.hour, sum);
  }
  const hoursSeen = [...byHour.keys()].sort();
  const kinds = ["opened", "closed", "breached"];
  return {
    columns: ["manager.hour", ...kinds.map((kind) => `count.${kind}`)],
    rows: hoursSeen.map((at) => [text(when(at)), ...kinds.map((kind) => count(byHour.get(at)[kind]))]),
    chart: series(hoursSeen.map(hour), kinds.map((kind) => [t(`count.${kind}`), hoursSeen.map((at) => byHour.get(at)[kind])]), { type: "line" }),
  };
}

function backlog(body) {
  return {
    columns: ["column.case_type", "column.queue", "count.open"],
    rows: body.backlog.map((entry) => [text(typeLabel(entry.case_type)), text(entry.queue), count(entry.open_cases ?? entry.open)]),
  };
}

// Each panel: the read model it shows (path) and how (shape).
const PANELS = [
  ["by-status", "manager.by_status", "/read-models/counts?by=status", counts],
  ["by-type", "manager.by_type", "/read-models/counts?by=case_type", counts],
  ["breached", "manager.breached", "/read-models/sla-status?state=breached", slaList],
  ["at-risk", "manager.at_risk", "/read-models/sla-status?state=at_risk", slaList],
  ["cycle-times", "manager.cycle_times", "/read-models/cycle-times", cycleTimes],
  ["throughput", "manager.throughput", "/read-models/throughput?days=30", throughput],
  ["workload-handler", "manager.workload_handler", "/read-models/workload?by=assignee", workload],
  ["workload-queue", "manager.workload_queue", "/read-models/workload?by=queue", workload],
  ["live-hours", "manager.live_hours", "/live-metrics", liveHours],
  ["backlog", "manager.backlog", "/live-metrics", backlog],
];

function draw(id, chart) {
  const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
  charts.get(id)?.destroy();
  if (!canvas || !chart) return;
  const scales = { y: { beginAtZero: true, ticks: chart.counts ? { precision: 0 } : {} } };
  charts.set(id, new window.Chart(canvas, {
    type: chart.type,
    data: { labels: chart.labels, datasets: chart.datasets },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales, plugins: { legend: { display: chart.datasets.length > 1 } } },
  }));
}

let typeLabels = {}; // case type name -> its label, from GET /case-types
const typeLabel = (name) => typeLabels[name] ?? name;

const dashboard = () => ({
  panels: PANELS.map(([id, title, path]) => ({ id, title, path, state: "loading", error: "", columns: [], rows: [], charted: false })),

  init() {
    this.load();
    setInterval(() => this.refresh((panel) => panel.path === "/live-metrics"), LIVE_EVERY_MS);
  },

  async load() {
    await attempt(async () => {
      typeLabels = Object.fromEntries((await caseTypes()).map((type) => [type.name, type.label]));
    });
    await this.refresh(() => true);
  },

  async refresh(which) {
    const chosen = this.panels.filter(which);
    const paths = [...new Set(chosen.map((panel) => panel.path))];
    const answers = new Map(await Promise.all(paths.map(async (at) => [at, await read(at)])));
    const drawings = chosen.map((panel) => [panel.id, this.fill(panel, answers.get(panel.path))]);
    await this.$nextTick();
    for (const [id, chart] of drawings) draw(id, chart);
  },

  /** Show the answer in the panel; returns the chart to draw, if any. */
  fill(panel, answer) {
    panel.state = answer.state;
    panel.error = answer.error ?? "";
    if (answer.state !== "ready") return null;
    const shape = PANELS.find(([id]) => id === panel.id)[3](answer.body);
    panel.columns = shape.columns;
    panel.rows = shape.rows;
    panel.charted = Boolean(shape.chart) && shape.rows.length > 0;
    return panel.charted ? shape.chart : null;
  },
});

async function read(at) {
  try {
    const body = await optional(at);
    return body === null ? { state: "unavailable" } : { state: "ready", body };
  } catch (error) {
    return { state: "error", error: error.message };
  }
}

start("manager", dashboard);
