// The worker's live dashboard: polls the worker's JSON API (../api/…) and redraws.
// No build step and no framework: plain DOM, plus uPlot (vendor/) for the time series.
"use strict";

const POLL_MS = 2000;
const FEED_LIMIT = 50;
const TOKEN_KEY = "segments.dashboard.token";

// Spec order, best to worst; colours run from greens through ambers to greys.
const SEGMENTS = [
  ["Champions", "#0f766e"],
  ["Loyal Customers", "#14b8a6"],
  ["Potential Loyalist", "#22c55e"],
  ["New Customers", "#3b82f6"],
  ["Promising", "#8b5cf6"],
  ["Need Attention", "#eab308"],
  ["About To Sleep", "#f59e0b"],
  ["At Risk", "#f97316"],
  ["Can't Lose Them", "#dc2626"],
  ["Hibernating", "#94a3b8"],
  ["Lost", "#475569"],
];
const SEGMENT_COLOR = Object.fromEntries(SEGMENTS);
const EVENT_TYPES = [
  ["order", "orders", "#2563eb"],
  ["cart", "carts", "#f59e0b"],
  ["email_open", "email opens", "#10b981"],
];
// One hue per topic; its partitions are lighter shades of it (see partitionColor).
const TOPIC_COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"];

// ---------------------------------------------------------------- formatting

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function fmtCount(value) {
  return value == null ? "—" : integer.format(value);
}

function fmtRate(value) {
  if (value == null) return "—";
  return value >= 100 ? integer.format(value) : decimal.format(value);
}

function fmtCompact(value) {
  if (value == null) return "";
  const abs = Math.abs(value);
  if (abs >= 1e6) return decimal.format(value / 1e6) + "M";
  if (abs >= 1e4) return decimal.format(value / 1e3) + "k";
  return abs < 10 && !Number.isInteger(value) ? decimal.format(value) : integer.format(value);
}

function fmtDuration(seconds) {
  if (seconds == null) return "—";
  const abs = Math.abs(seconds);
  if (abs < 60) return decimal.format(seconds) + " s";
  if (abs < 3600) return decimal.format(seconds / 60) + " min";
  if (abs < 2 * 86400) return decimal.format(seconds / 3600) + " h";
  return integer.format(seconds / 86400) + " d";
}

// "2024-03-01T12:30:00.412Z" -> "2024-03-01 12:30:00" (the API's instants are UTC).
function fmtInstant(text) {
  if (!text) return "—";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString().slice(0, 19).replace("T", " ");
}

function fmtAge(text, now) {
  const then = Date.parse(text);
  if (Number.isNaN(then)) return "—";
  const seconds = Math.max(0, (now - then) / 1000);
  return seconds < 1 ? "just now" : fmtDuration(seconds) + " ago";
}

// ---------------------------------------------------------------- DOM helpers

const $ = (id) => document.getElementById(id);

// el("td", {class: "x", title: "y"}, child, "text", …): children may be nodes, text or null.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style") node.style.cssText = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function segmentChip(name) {
  if (name == null) return el("span", { class: "chip chip-none" }, "none");
  return el("span", { class: "chip", style: `--chip: ${SEGMENT_COLOR[name] || "#64748b"}` }, name);
}

function tagChip(tag, entered = null) {
  const sign = entered == null ? "" : entered ? "+ " : "− ";
  const cls = entered == null ? "tag" : entered ? "tag tag-in" : "tag tag-out";
  return el("span", { class: cls }, sign + tag);
}

function changeCell(change) {
  if (change.kind === "segment") {
    return el("span", { class: "transition" }, segmentChip(change.from), el("span", { class: "arrow" }, "→"), segmentChip(change.to));
  }
  return tagChip(change.tag, change.entered);
}

function causeCell(cause) {
  if (!cause) return "—";
  if (cause.kind === "time") return el("span", { class: "cause cause-time", title: "time passing alone" }, "time");
  if (cause.kind === "rules") return el("span", { class: "cause cause-time", title: "a change of the rules file" }, "rules");
  return el("span", { class: "cause", title: cause.event_id }, cause.event_type.replace("_", " "));
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(new URL("../api/" + path, document.baseURI), { headers, cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // A proxy's HTML error page, say: the status tells enough.
  }
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

// ---------------------------------------------------------------- time-series charts

// Time-axis tick spacings in seconds: samples are seconds apart, so no sub-second ticks.
const TIME_INCREMENTS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

// uPlot points.filter: the indices of values that no line reaches. With spanGaps a line
// joins values across nulls, so only a series' single value is alone.
function loneValues(u, seriesIdx, show) {
  if (show) return null;
  const values = u.data[seriesIdx];
  const present = (i) => i >= 0 && i < values.length && values[i] != null;
  const indices = [];
  for (let i = 0; i < values.length; i++) if (present(i)) indices.push(i);
  if (u.series[seriesIdx].spanGaps) return indices.length === 1 ? indices : null;
  const lone = indices.filter((i) => !present(i - 1) && !present(i + 1));
  return lone.length ? lone : null;
}

// One uPlot chart with its own legend: the legend shows the values under the cursor,
// or the latest ones; clicking an entry hides or shows its series.
class TimeChart {
  constructor(container, legend, { stacked = false, format = fmtCompact, emptyText = "waiting for samples…" } = {}) {
    this.container = container;
    this.legend = legend;
    this.stacked = stacked;
    this.format = format;
    this.plot = null;
    this.signature = null;
    this.xs = [];
    this.series = [];
    this.hidden = new Set();
    this.empty = el("div", { class: "chart-empty" }, emptyText);
    container.append(this.empty);
    new ResizeObserver(() => this.plot && this.plot.setSize(this.size())).observe(container);
  }

  size() {
    return { width: Math.max(200, this.container.clientWidth), height: this.container.clientHeight || 220 };
  }

  // xs: unix seconds; series: [{label, color, values}] with one value (or null) per x.
  update(xs, series) {
    this.xs = xs;
    this.series = series;
    const signature = series.map((s) => s.label).join("\u0000");
    const data = this.plotData();
    if (!this.plot || signature !== this.signature) {
      if (this.plot) this.plot.destroy();
      this.plot = new uPlot(this.options(), data, this.container);
      this.signature = signature;
    } else {
      this.plot.setData(data);
    }
    // For tests and the curious: how much the chart holds.
    const values = series.flatMap((s) => s.values).filter((v) => v != null);
    const points = values.length;
    this.container.dataset.points = String(points);
    this.container.dataset.samples = String(xs.filter((_, i) => series.some((s) => s.values[i] != null)).length);
    this.container.dataset.max = String(values.reduce((a, b) => Math.max(a, b), 0));
    this.empty.hidden = points > 0;
    this.renderLegend(null);
  }

  // Stacked charts draw running sums, each series filled down to the one below it.
  plotData() {
    const columns = this.series.map((s, i) => (this.hidden.has(i) ? s.values.map(() => null) : s.values));
    if (!this.stacked) return [this.xs, ...columns];
    const sums = this.xs.map(() => 0);
    const stacked = columns.map((values) => values.map((v, i) => (sums[i] += v || 0)));
    return [this.xs, ...stacked];
  }

  options() {
    const axis = {
      stroke: "#6b7280",
      font: "11px system-ui, sans-serif",
      grid: { stroke: "#eef0f3", width: 1 },
      ticks: { stroke: "#e5e7eb", width: 1, size: 4 },
    };
    const series = this.series.map((s, i) => ({
      label: s.label,
      stroke: s.color,
      width: this.stacked ? 1 : 1.6,
      fill: this.stacked ? s.color + "d9" : undefined,
      // A value with no neighbour to draw a line to (the first sample that knows a
      // partition's lag, say) would not show at all: draw those as dots.
      points: { show: false, filter: loneValues, fill: s.color },
      spanGaps: !this.stacked,
      show: !this.hidden.has(i),
    }));
    return {
      ...this.size(),
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { y: { range: (u, min, max) => uPlot.rangeNum(0, Math.max(max || 0, 1), 0.1, true) } },
      axes: [
        { ...axis, incrs: TIME_INCREMENTS },
        { ...axis, size: 48, values: (u, splits) => splits.map((v) => this.format(v)) },
      ],
      series: [{}, ...series],
      // Series i+1 lies on series i: fill only the band between them.
      bands: this.stacked ? this.series.slice(1).map((_, i) => ({ series: [i + 2, i + 1] })) : [],
      hooks: { setCursor: [(u) => this.renderLegend(u.cursor.idx)] },
    };
  }

  renderLegend(cursorIdx) {
    const last = this.xs.length - 1;
    const idx = cursorIdx == null ? last : cursorIdx;
    const total = this.stacked ? this.series.reduce((sum, s) => sum + (s.values[idx] || 0), 0) : null;
    const items = this.series.map((s, i) => {
      const value = idx >= 0 ? s.values[idx] : null;
      const share = total ? ` · ${decimal.format((100 * (value || 0)) / total)}%` : "";
      return el(
        "li",
        { class: this.hidden.has(i) ? "legend-item is-hidden" : "legend-item", title: `${s.title || s.label} (click to hide or show)`, onclick: () => this.toggle(i) },
        el("span", { class: "swatch", style: `background: ${s.color}` }),
        el("span", { class: "legend-label" }, s.label),
        el("span", { class: "legend-value" }, value == null ? "—" : this.format(value) + share),
      );
    });
    const when = idx >= 0 && cursorIdx != null ? fmtInstant(new Date(this.xs[idx] * 1000).toISOString()) + " UTC" : "latest";
    this.legend.replaceChildren(el("li", { class: "legend-when" }, when), ...items);
  }

  toggle(i) {
    if (this.hidden.has(i)) this.hidden.delete(i);
    else this.hidden.add(i);
    if (this.stacked) {
      this.plot.setData(this.plotData());
    } else {
      this.plot.setSeries(i + 1, { show: !this.hidden.has(i) });
    }
    this.renderLegend(null);
  }
}

// ---------------------------------------------------------------- series from /api/series

function seconds(instant) {
  return Date.parse(instant) / 1000;
}

function partitionOrder(a, b) {
  const [ta, pa] = splitPartitionKey(a);
  const [tb, pb] = splitPartitionKey(b);
  return ta === tb ? pa - pb : ta < tb ? -1 : 1;
}

function splitPartitionKey(key) {
  const at = key.lastIndexOf(":");
  return [key.slice(0, at), Number(key.slice(at + 1))];
}

// Topic names without the prefix they all share ("myapp-orders", "myapp-carts" ->
// "orders", "carts"), cut at a separator; the full names are in the tooltips.
function shortTopicNames(topics) {
  const names = [...new Set(topics)];
  if (names.length < 2) return new Map(names.map((t) => [t, t]));
  let prefix = names.reduce((a, b) => {
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    return a.slice(0, i);
  });
  prefix = prefix.slice(0, Math.max(...["-", ".", "_"].map((sep) => prefix.lastIndexOf(sep))) + 1);
  return new Map(names.map((t) => [t, t.slice(prefix.length) || t]));
}

function partitionColor(topicIndex, partitionIndex, partitionCount) {
  const hex = TOPIC_COLORS[topicIndex % TOPIC_COLORS.length];
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const towardsWhite = partitionCount > 1 ? (0.55 * partitionIndex) / partitionCount : 0;
  return "rgb(" + rgb.map((c) => Math.round(c + (255 - c) * towardsWhite)).join(",") + ")";
}

function lagSeries(samples) {
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s.lag || {})))].sort(partitionOrder);
  const topics = [...new Set(keys.map((k) => splitPartitionKey(k)[0]))];
  const short = shortTopicNames(topics);
  return keys.map((key) => {
    const [topic, partition] = splitPartitionKey(key);
    const siblings = keys.filter((k) => splitPartitionKey(k)[0] === topic);
    return {
      // With one topic the partition number says it all.
      label: topics.length > 1 ? `${short.get(topic)}:${partition}` : `partition ${partition}`,
      title: key,
      color: partitionColor(topics.indexOf(topic), siblings.indexOf(key), siblings.length),
      values: samples.map((s) => (s.lag && s.lag[key] != null ? s.lag[key] : null)),
    };
  });
}

// Events per second between consecutive samples, from the running totals; a total that
// went down (the worker restarted) gives no rate for that step.
function rateSeries(samples) {
  return EVENT_TYPES.map(([type, label, color]) => ({
    label,
    color,
    values: samples.map((s, i) => {
      if (i === 0) return null;
      const before = samples[i - 1];
      const dt = seconds(s.at) - seconds(before.at);
      const dn = ((s.events_by_type || {})[type] || 0) - ((before.events_by_type || {})[type] || 0);
      return dt > 0 && dn >= 0 ? dn / dt : null;
    }),
  }));
}

// Bottom to top: customers with no segment yet (no counted order: prospects), then Lost
// up to Champions on top, so the legend reads like the chart.
const NO_SEGMENT = "none";

function segmentSeries(samples) {
  const series = [...SEGMENTS].reverse().map(([name, color]) => ({
    label: name,
    color,
    values: samples.map((s) => (s.segments || {})[name] || 0),
  }));
  if (samples.some((s) => s.segments && NO_SEGMENT in s.segments)) {
    series.unshift({ label: "no segment", color: "#cbd5e1", values: samples.map((s) => s.segments[NO_SEGMENT] || 0) });
  }
  return series;
}

// ---------------------------------------------------------------- panels fed by /api/overview

function renderHeader(overview) {
  $("app-id").textContent = overview.app_id;
  $("rules-version").textContent = overview.rules_version;
  $("updated-at").textContent = new Date(overview.now).toLocaleTimeString();
  $("updated-at").setAttribute("datetime", overview.now);
  setStatus(overview.ready ? "ready" : "starting", overview.ready ? "ready" : "not ready: assigning partitions or recovering tables");
}

function setStatus(state, text) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
}

function renderKpis(overview, series) {
  const lags = overview.partitions.map((p) => p.lag).filter((v) => v != null);
  const eventLags = overview.clocks.map((c) => c.event_time_lag_seconds).filter((v) => v != null);
  const deadLetters = Object.values(overview.dead_letters_by_reason || {}).reduce((a, b) => a + b, 0);
  $("kpi-customers").textContent = fmtCount(overview.customers);
  $("kpi-lag").textContent = lags.length ? fmtCount(lags.reduce((a, b) => a + b, 0)) : "—";
  $("kpi-event-lag").textContent = eventLags.length ? fmtDuration(Math.max(...eventLags)) : "—";
  $("kpi-changes").textContent = fmtCount(overview.changes_total);
  $("kpi-timers").textContent = fmtCount(overview.pending_timers);
  $("kpi-dlq").textContent = fmtCount(deadLetters);
  const rates = series ? rateSeries(series.samples.slice(-2)).map((s) => s.values[1]) : [];
  $("kpi-rate").textContent = rates.length && rates.every((r) => r != null) ? fmtRate(rates.reduce((a, b) => a + b, 0)) : "—";
}

// Rows: from, columns: to; "none" is a customer without a segment (no counted order).
function renderTransitions(transitions) {
  const names = [null, ...SEGMENTS.map(([name]) => name)];
  const label = (name) => (name == null ? "none" : name);
  const counts = new Map();
  for (const t of transitions || []) counts.set(`${label(t.from)}\u0000${label(t.to)}`, t.count);
  const count = (from, to) => counts.get(`${label(from)}\u0000${label(to)}`) || 0;
  const max = Math.max(1, ...counts.values());

  const head = el(
    "tr", {},
    el("th", { class: "matrix-corner" }, el("span", {}, "from ↓ to →")),
    names.map((to) => el("th", { class: "matrix-col", title: label(to) }, el("span", {}, label(to)))),
    el("th", { class: "matrix-col matrix-total" }, el("span", {}, "total")),
  );
  const rows = names.map((from) => {
    const cells = names.map((to) => {
      const n = count(from, to);
      if (!n) return el("td", { class: "cell", title: `${label(from)} → ${label(to)}: 0` });
      const strength = 0.12 + 0.88 * Math.sqrt(n / max);
      return el(
        "td",
        {
          class: strength > 0.55 ? "cell nonzero dark" : "cell nonzero",
          style: `--strength: ${strength.toFixed(3)}`,
          title: `${label(from)} → ${label(to)}: ${n}`,
          dataset: { from: label(from), to: label(to), count: n },
        },
        fmtCompact(n),
      );
    });
    const rowTotal = names.reduce((sum, to) => sum + count(from, to), 0);
    return el(
      "tr", {},
      el("th", { class: "matrix-row" }, el("span", { class: "swatch", style: `background: ${SEGMENT_COLOR[from] || "#cbd5e1"}` }), label(from)),
      cells,
      el("td", { class: "cell total" }, rowTotal ? fmtCompact(rowTotal) : ""),
    );
  });
  const columnTotals = names.map((to) => names.reduce((sum, from) => sum + count(from, to), 0));
  const foot = el(
    "tr", { class: "matrix-foot" },
    el("th", { class: "matrix-row" }, "total"),
    columnTotals.map((n) => el("td", { class: "cell total" }, n ? fmtCompact(n) : "")),
    el("td", { class: "cell total" }, fmtCompact(columnTotals.reduce((a, b) => a + b, 0))),
  );
  $("transitions").replaceChildren(el("thead", {}, head), el("tbody", {}, rows, foot));

  const top = [...(transitions || [])].sort((a, b) => b.count - a.count).slice(0, 6);
  renderCounts($("top-transitions"), Object.fromEntries(top.map((t) => [`${label(t.from)} → ${label(t.to)}`, t.count])), "no segment change yet");
}

function renderPartitions(overview) {
  const short = shortTopicNames(overview.partitions.map((p) => p.topic));
  const partitionRows = [...overview.partitions]
    .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
    .map((p) =>
      el("tr", {},
        el("td", { title: p.topic }, short.get(p.topic)), el("td", {}, p.partition),
        el("td", {}, fmtCount(p.committed)), el("td", {}, fmtCount(p.end)),
        el("td", { class: p.lag ? "warn" : null }, fmtCount(p.lag))));
  $("partitions").tBodies[0].replaceChildren(...partitionRows);

  const clockRows = [...overview.clocks]
    .sort((a, b) => a.partition - b.partition)
    .map((c) =>
      el("tr", {},
        el("td", {}, c.partition), el("td", {}, c.clock ? fmtInstant(c.clock) : "no event yet"),
        el("td", {}, fmtDuration(c.event_time_lag_seconds)), rulesCell(c)));
  $("clocks").tBodies[0].replaceChildren(...clockRows);

  renderCounts($("dead-letters"), overview.dead_letters_by_reason, "none");
  renderCounts($("tags"), overview.tags, "no tagged customer");
}

// The rules a partition runs under; after a change of rules, whether its stored
// customers are all moved to them yet (README: Changing the rules).
function rulesCell(c) {
  if (!c.rules_version) return el("td", {}, "—");
  const code = el("code", {}, c.rules_version);
  if (!c.rules_since || c.rules_swept) return el("td", {}, code);
  return el("td", { class: "warn", title: `replacing ${c.rules_previous} from ${c.rules_since} on` },
    code, " moving customers");
}

function renderCounts(list, counts, emptyText) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  list.replaceChildren(
    ...(entries.length
      ? entries.map(([name, n]) =>
          el("li", {},
            el("span", { class: "count-name" }, name),
            el("span", { class: "count-bar", style: `--share: ${(n / max).toFixed(3)}` }),
            el("span", { class: "count-value" }, fmtCount(n))))
      : [el("li", { class: "muted" }, emptyText)]),
  );
}

// ---------------------------------------------------------------- change feed

const seenChanges = new Set();
let feedPrimed = false;

function renderFeed(changes, now) {
  const rows = changes.map((c) => {
    const fresh = feedPrimed && !seenChanges.has(c.change_id);
    seenChanges.add(c.change_id);
    return el(
      "tr", { class: fresh ? "fresh" : null, dataset: { changeId: c.change_id } },
      el("td", { class: "mono" }, fmtInstant(c.at)),
      el("td", {}, el("a", { href: "#lookup", class: "customer-link", onclick: (e) => { e.preventDefault(); lookUp(c.customer_id); } }, c.customer_id)),
      el("td", {}, changeCell(c)),
      el("td", {}, causeCell(c.cause)),
      el("td", {}, segmentChip(c.segment)),
      el("td", { class: "muted", title: c.emitted_at }, fmtAge(c.emitted_at, now)),
    );
  });
  feedPrimed = true;
  $("feed").tBodies[0].replaceChildren(...rows);
  $("feed-empty").hidden = rows.length > 0;
}

// ---------------------------------------------------------------- customer lookup

async function lookUp(customerId) {
  const id = customerId.trim();
  if (!id) return;
  $("lookup-id").value = id;
  const result = $("lookup-result");
  result.dataset.state = "loading";
  result.replaceChildren(el("p", { class: "muted" }, `Looking up ${id}…`));
  result.scrollIntoView({ block: "nearest", behavior: "smooth" });
  try {
    const found = await api("customers/" + encodeURIComponent(id));
    result.dataset.state = "found";
    result.replaceChildren(renderProfile(found.profile), renderHistory(found.history));
  } catch (error) {
    if (error.status === 404) {
      result.dataset.state = "not-found";
      const text = error.message.startsWith("erased at ")
        ? `Customer “${id}” was ${error.message} on request: nothing else about them is kept.`
        : `No customer “${id}” is known to this worker.`;
      result.replaceChildren(el("p", { class: "notice", role: "status" }, text));
    } else if (error.status === 401) {
      result.dataset.state = "idle";
      result.replaceChildren();
      needToken();
    } else {
      result.dataset.state = "error";
      result.replaceChildren(el("p", { class: "notice notice-error", role: "alert" }, `The lookup failed: ${error.message}`));
    }
  }
}

function scoreBox(letter, value, title) {
  const pips = [1, 2, 3, 4, 5].map((n) => el("span", { class: value != null && n <= value ? "pip on" : "pip" }));
  return el("div", { class: "score", title }, el("span", { class: "score-letter" }, letter), el("span", { class: "score-value" }, value ?? "—"), el("span", { class: "pips" }, pips));
}

function renderProfile(p) {
  const fact = (name, value) => [el("dt", {}, name), el("dd", {}, value)];
  return el(
    "div", { class: "profile", id: "profile" },
    el("div", { class: "profile-head" },
      el("span", { class: "profile-id mono" }, p.customer_id),
      el("span", { id: "profile-segment" }, p.segment == null ? el("span", { class: "chip chip-none" }, "no segment (no counted order)") : segmentChip(p.segment)),
      el("span", { class: "profile-tags" }, p.tags.length ? p.tags.map((t) => tagChip(t)) : el("span", { class: "muted" }, "no tags"))),
    el("div", { class: "profile-body" },
      el("div", { class: "scores" },
        scoreBox("R", p.r, "recency score"), scoreBox("F", p.f, "frequency score"), scoreBox("M", p.m, "monetary score")),
      el("dl", { class: "facts" },
        fact("recency", p.recency_days == null ? "—" : `${fmtCount(p.recency_days)} days`),
        fact("frequency", p.frequency == null ? "—" : `${fmtCount(p.frequency)} orders in the window`),
        fact("monetary", p.monetary == null ? "—" : money.format(p.monetary)),
        fact("lifetime orders", fmtCount(p.orders_lifetime)),
        fact("first order", fmtInstant(p.first_order_at)),
        fact("last order", fmtInstant(p.last_order_at)),
        fact("as of", fmtInstant(p.as_of) + " UTC"),
        fact("rules", el("code", {}, p.rules_version)))),
  );
}

function renderHistory(history) {
  if (!history.length) return el("p", { class: "muted" }, "No changes recorded for this customer.");
  return el(
    "div", { class: "history" },
    el("h3", {}, `History · ${history.length} change${history.length === 1 ? "" : "s"}, newest first`),
    el("div", { class: "table-scroll table-scroll-short" },
      el("table", { class: "table", id: "history" },
        el("thead", {}, el("tr", {}, el("th", {}, "at (UTC)"), el("th", {}, "change"), el("th", {}, "cause"), el("th", {}, "segment after"), el("th", {}, "R F M"))),
        el("tbody", {}, history.map((c) =>
          el("tr", {},
            el("td", { class: "mono" }, fmtInstant(c.at)),
            el("td", {}, changeCell(c)),
            el("td", {}, causeCell(c.cause)),
            el("td", {}, segmentChip(c.segment)),
            el("td", { class: "mono" }, c.scores && c.scores.r != null ? `${c.scores.r} ${c.scores.f} ${c.scores.m}` : "—")))))),
  );
}

// ---------------------------------------------------------------- bearer token

function needToken() {
  const hadToken = sessionStorage.getItem(TOKEN_KEY) != null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("auth").hidden = false;
  $("forget-token").hidden = true;
  $("auth-message").textContent = hadToken ? "The token was rejected; enter another." : "It is kept for this browser tab only.";
  setStatus("auth", "token required");
}

function setUpAuth() {
  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("auth-token").value.trim());
    $("auth-token").value = "";
    $("auth").hidden = true;
    $("forget-token").hidden = false;
    poller.now();
  });
  $("forget-token").hidden = sessionStorage.getItem(TOKEN_KEY) == null;
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
}

// ---------------------------------------------------------------- polling

const charts = {};
let lastSeries = null;
let nextSeriesAt = 0;

async function refresh() {
  const [overview, feed] = await Promise.all([api("overview"), api(`changes?limit=${FEED_LIMIT}`)]);
  // The worker samples every interval_seconds; fetching the hour of samples more often
  // than that would bring nothing new.
  if (Date.now() >= nextSeriesAt) {
    lastSeries = await api("series");
    nextSeriesAt = Date.now() + Math.max(POLL_MS, 1000 * (lastSeries.interval_seconds || 0)) - 250;
    const samples = lastSeries.samples;
    const xs = samples.map((s) => seconds(s.at));
    charts.lag.update(xs, lagSeries(samples));
    charts.rates.update(xs, rateSeries(samples));
    charts.segments.update(xs, segmentSeries(samples));
  }
  renderHeader(overview);
  renderKpis(overview, lastSeries);
  renderTransitions(overview.transitions);
  renderPartitions(overview);
  renderFeed(feed.changes, Date.parse(overview.now));
}

const poller = {
  timer: null,
  running: false,
  async now() {
    clearTimeout(this.timer);
    if (this.running) return;
    this.running = true;
    let again = true;
    try {
      await refresh();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        needToken();
        again = false; // until a token is entered
      } else {
        setStatus("down", `unreachable: ${error.message}`);
      }
    } finally {
      this.running = false;
      if (again) this.timer = setTimeout(() => this.now(), document.hidden ? 5 * POLL_MS : POLL_MS);
    }
  },
};

function start() {
  charts.lag = new TimeChart($("chart-lag"), $("legend-lag"));
  charts.rates = new TimeChart($("chart-rates"), $("legend-rates"), { format: fmtRate, emptyText: "waiting for two samples…" });
  charts.segments = new TimeChart($("chart-segments"), $("legend-segments"), { stacked: true });
  renderTransitions([]);
  setUpAuth();
  $("lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    lookUp($("lookup-id").value);
  });
  document.addEventListener("visibilitychange", () => !document.hidden && poller.now());
  poller.now();
}

start();
