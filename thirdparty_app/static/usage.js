// The usage point page: energy (or cost) per hour, day, week or month as bars, for a day, a week,
// a month, a year or chosen dates, with previous/next and the same span before (the previous
// period, or the same dates a year before) beside it; totals that say what changed; every
// time in the usage point's own time zone. Readings come from the JSON API; uPlot draws them
// (served from this app, installed by `make`). A file, not inline script: the
// Content-Security-Policy allows none.
(function () {
  "use strict";
  const box = document.getElementById("usage-chart");
  const form = document.getElementById("controls");
  if (!box || !form) return;
  const more = document.getElementById("unit-charts");
  const summary = document.getElementById("summary");
  const periodLabel = document.getElementById("period-label");
  const caption = document.getElementById("chart-total");
  const zone = box.dataset.zone || "UTC";
  const colours = { main: "#1d6a3a", sent: "#d08700", net: "#175c8c", before: "#6b7785", plans: ["#8e3fb0", "#c2410c", "#0e7490", "#a21caf"] };

  // ------------------------------------------------------------------ dates (calendar days)
  const day = (text) => new Date(text + "T00:00:00Z");  // a local date, kept as a UTC midnight
  const text = (d) => d.toISOString().slice(0, 10);
  const plusDays = (d, n) => new Date(d.getTime() + n * 86400000);
  const monthStart = (d, n = 0) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
  const monthEnd = (d, n = 0) => plusDays(monthStart(d, n + 1), -1);
  const lastYear = (d) => {
    const back = new Date(Date.UTC(d.getUTCFullYear() - 1, d.getUTCMonth(), d.getUTCDate()));
    return back.getUTCMonth() === d.getUTCMonth() ? back : plusDays(back, -1);  // 29 Feb
  };
  const span = (a, b) => Math.round((b - a) / 86400000) + 1;

  // a view: its dates around a day (the last one shown), its bars, how far previous/next go
  const VIEWS = {
    day: { bars: "hour", dates: (d) => [d, d], move: (a, b, n) => [plusDays(a, n), plusDays(b, n)] },
    week: { bars: "day", dates: (d) => [plusDays(d, -6), d], move: (a, b, n) => [plusDays(a, 7 * n), plusDays(b, 7 * n)] },
    month: { bars: "day", dates: (d) => [monthStart(d), monthEnd(d)], move: (a, b, n) => [monthStart(a, n), monthEnd(a, n)] },
    year: { bars: "month", dates: (d) => [monthStart(d, -11), monthEnd(d)], move: (a, b, n) => [monthStart(a, 12 * n), monthEnd(b, 12 * n)] },
    dates: { bars: null, dates: null, move: (a, b, n) => [plusDays(a, n * span(a, b)), plusDays(b, n * span(a, b))] },
  };
  const view = () => form.querySelector("input[name=view]:checked").value;

  function setDates(a, b) {
    form.start.value = text(a);
    form.end.value = text(b);
  }

  // ------------------------------------------------------------------ numbers and words
  const whole = new Intl.NumberFormat("en-US");
  function quantity(v, unit) {  // two decimals under 10, one under 100, none above
    if (v == null || Number.isNaN(v)) return "–";
    const size = Math.abs(v), places = unit === "$/kWh" ? 3 : size < 10 ? 2 : size < 100 ? 1 : 0;
    const number = new Intl.NumberFormat("en-US", { minimumFractionDigits: places, maximumFractionDigits: places }).format(v);
    return `${number} ${unit}`;
  }
  let currency = "USD";
  const money = (v) => v == null ? "–" : new Intl.NumberFormat("en-US", { style: "currency", currency }).format(v);
  const fmt = (v, unit) => unit === "money" ? money(v) : quantity(v, unit);
  function when(epoch, bars, long, many) {
    const t = new Date(epoch * 1000);
    const o = { timeZone: zone };
    if (bars === "day" && !long) {  // "Sun 3" under a week's bars, "Nov 3" under a month's
      const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: zone, weekday: "short", month: "short", day: "numeric" })
        .formatToParts(t).map((p) => [p.type, p.value]));
      return `${many ? parts.month : parts.weekday} ${parts.day}`;
    }
    if (bars === "month") Object.assign(o, long ? { month: "long", year: "numeric" } : { month: "short", year: "2-digit" });
    else if (bars === "week") Object.assign(o, long ? { month: "short", day: "numeric", year: "numeric" } : { month: "short", day: "numeric" });
    else if (bars === "day") Object.assign(o, long ? { weekday: "long", month: "short", day: "numeric", year: "numeric" } : { weekday: "short", day: "numeric" });
    else Object.assign(o, long ? { weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short" } : { hour: "numeric" });
    const words = new Intl.DateTimeFormat("en-US", o).format(t);
    return bars === "week" && long ? `Week of ${words}` : words;
  }
  function dates(a, b) {
    const o = { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" };
    const f = new Intl.DateTimeFormat("en-US", o);
    return text(a) === text(b) ? f.format(a) : `${f.format(a)} – ${f.format(b)}`;
  }

  // a series as people name it, and the unit it is drawn in (factor from the API's unit)
  function describe(s) {
    if (s.kind === "tariffRate") return { what: "Price", unit: "$/kWh", factor: 1, sums: false };
    if (s.unit === "Wh") {
      const what = { forward: "Used from the grid", reverse: "Sent to the grid", net: "Net" }[s.flow] || "Energy";
      return { what, unit: "kWh", factor: 1e-3, sums: true, energy: true, flow: s.flow || "forward" };
    }
    if (s.unit === "g") return { what: "Emissions", unit: "kg CO₂e", factor: 1e-3, sums: true };
    if (s.unit === "therm") return { what: "Gas used", unit: "therms", factor: 1, sums: true };
    const unit = { ft3: "ft³", m3: "m³", gal: "gal" }[s.unit] || s.unit || "";
    return { what: unit ? "Used" : "Reading", unit, factor: 1, sums: s.aggregation !== "mean" };
  }

  // ------------------------------------------------------------------ the data
  function params(a, b) {
    return new URLSearchParams({ aggregate: form.aggregate.value, start: text(a), end: text(b) });
  }
  async function readings(a, b) {
    const answer = await fetch(`${box.dataset.api}?${params(a, b)}`, { credentials: "same-origin" });
    if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
    return answer.json();
  }
  function comparedDates(a, b) {
    const mode = form.compare.value;
    if (mode === "year") return [lastYear(a), lastYear(b)];
    if (mode === "previous") return VIEWS[view()].move(a, b, -1);
    return null;
  }

  // where each bar stands in its period (which begins on the local date `from`): its month, week
  // or day from the period's start, and its local time of day; a wall time given twice (the
  // hour a clock goes back) counted apart. Two periods' bars at the same place are compared.
  const clock = new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function places(starts, from, bucket) {
    const monday = plusDays(from, -((from.getUTCDay() + 6) % 7));  // weekly bars start on Mondays
    const seen = new Map();
    return starts.map((t) => {
      const p = Object.fromEntries(clock.formatToParts(new Date(t * 1000)).map((x) => [x.type, x.value]));
      const date = day(`${p.year}-${p.month}-${p.day}`);
      const key = bucket === "month" ? 12 * (date.getUTCFullYear() - from.getUTCFullYear()) + date.getUTCMonth() - from.getUTCMonth()
        : bucket === "week" ? Math.floor((span(monday, date) - 1) / 7)
        : bucket === "day" ? span(from, date) - 1 : `${span(from, date) - 1} ${p.hour}:${p.minute}`;
      const n = seen.get(key) || 0;
      seen.set(key, n + 1);
      return `${key}/${n}`;
    });
  }

  // the buckets of a body (its period begins on `from`): starts, durations, one array per drawn line
  function lines(body, measure, from) {
    const starts = [...new Set(body.series.flatMap((s) => s.points.map((p) => Date.parse(p.start) / 1000)))].sort((x, y) => x - y);
    const at = new Map(starts.map((t, i) => [t, i]));
    const durations = new Array(starts.length).fill(0);  // each bar spans its period, energy or cost
    body.series.forEach((s) => s.points.forEach((p) => {
      const i = at.get(Date.parse(p.start) / 1000);
      durations[i] = Math.max(durations[i], p.duration || 0);
    }));
    const groups = new Map();  // unit -> [{label, kind, values}]
    const add = (unit, key, label, kind) => {
      if (!groups.has(unit)) groups.set(unit, new Map());
      const group = groups.get(unit);
      if (!group.has(key)) group.set(key, { label, kind, values: new Array(starts.length).fill(null) });
      return group.get(key).values;
    };
    const plus = (values, i, v) => { if (v != null) values[i] = (values[i] ?? 0) + v; };
    const solar = body.series.some((s) => s.unit === "Wh" && s.flow === "reverse");
    for (const s of body.series) {
      const d = describe(s);
      if (measure === "cost") {
        if (!d.sums) continue;
        s.points.forEach((p) => {
          const i = at.get(Date.parse(p.start) / 1000);
          plus(add("money", "utility", "Your utility's cost", "bars"), i, p.cost);
          (body.plans || []).forEach((plan) => {
            plus(add("money", `plan-${plan.id}`, `Estimate: ${plan.name}`, "line"), i, p.estimates ? p.estimates[plan.id] : null);
          });
        });
        continue;
      }
      const key = d.energy ? d.flow : `${s.meter_reading}`;
      const label = d.energy && solar ? { forward: "Imported", reverse: "Exported", net: "Net" }[d.flow] : d.what;
      const values = add(d.unit, key, label, d.sums ? "bars" : "line");
      s.points.forEach((p) => {
        const i = at.get(Date.parse(p.start) / 1000);
        if (p.value == null) return;
        const v = p.value * d.factor;
        values[i] = d.sums ? (values[i] ?? 0) + (d.flow === "reverse" ? -v : v) : v;
      });
    }
    if (measure !== "cost" && solar && groups.has("kWh")) {  // net: imported less exported
      const group = groups.get("kWh");
      const bought = group.get("forward"), sold = group.get("reverse");
      if (bought && sold && !group.has("net")) {
        group.set("net", { label: "Net", kind: "line", values: bought.values.map((v, i) => v == null && sold.values[i] == null ? null : (v ?? 0) + (sold.values[i] ?? 0)) });
      }
    }
    return { starts, durations, groups, from };
  }

  // ------------------------------------------------------------------ charts
  let charts = [];
  const bars = window.uPlot && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 60], align: 0 }) : undefined;

  function draw(target, data, unit, bucket, height) {
    const { starts, durations, lines: drawn } = data;
    const xs = starts.map((t, i) => t + (durations[i] || 0) / 2);  // each bar at its middle
    const extent = [starts[0], starts[starts.length - 1] + (durations[durations.length - 1] || 0)];
    const series = [{
      label: "When",
      value: (u, v, si, idx) => idx == null ? "" : when(starts[idx], bucket, true),
    }];
    drawn.forEach((l, n) => {
      const colour = l.colour || colours.plans[n % colours.plans.length];
      const asBars = l.kind === "bars" && bucket !== "hour" && bucket !== "none";
      series.push({
        label: l.label, stroke: colour, width: asBars ? 1 : 2, scale: "y",
        fill: asBars ? colour + "cc" : l.kind === "bars" ? colour + "22" : undefined,
        paths: asBars ? bars : undefined, points: { show: l.kind === "line" && starts.length < 60 },
        dash: l.dash, spanGaps: false,
        value: (u, v) => fmt(v != null && l.flip ? -v : v, unit),
      });
    });
    const width = target.clientWidth || box.clientWidth || 600;
    const step = Math.max(1, Math.ceil(starts.length / Math.max(2, Math.floor(width / 64))));
    const axisLabel = unit === "money" ? currency : unit;
    const opts = {
      width, height, series,
      scales: {
        y: { range: (u, lo, hi) => uPlot.rangeNum(Math.min(0, lo ?? 0), Math.max(0, hi ?? 1), 0.1, true) },  // bars start at zero
        // the whole period (the first bar's start to the last one's end), or a zoomed part
        x: { time: false, range: (u, lo, hi) => lo <= xs[0] && hi >= xs[xs.length - 1] ? extent : [lo, hi] },
      },
      axes: [
        { splits: () => xs.filter((_, i) => i % step === 0), values: (u, splits) => splits.map((x) => when(starts[xs.indexOf(x)], bucket, false, xs.length > 14)), grid: { show: false } },
        { label: axisLabel, size: 64, values: (u, ticks) => ticks.map((v) => unit === "money" ? money(v) : whole.format(v)) },
      ],
      cursor: { sync: { key: "usage" }, drag: { x: true, y: false } },
      legend: { live: true },
      hooks: {
        ready: [(u) => u.setLegend({ idx: xs.length - 1 })],
        setCursor: [(u) => { if (u.cursor.idx == null && xs.length) u.setLegend({ idx: xs.length - 1 }); }],
      },
    };
    target.textContent = "";
    return new uPlot(opts, [xs, ...drawn.map((l) => l.values)], target);
  }

  function drawAll(now, before, measure) {
    charts.forEach((u) => u.destroy());
    charts = [];
    more.textContent = "";
    const bucket = form.aggregate.value;
    const height = window.innerWidth < 640 ? 240 : 320;
    const units = [...now.groups.keys()];
    if (!now.starts.length || !units.length) {
      box.textContent = "No readings in these dates. Try the previous period, or other dates.";
      box.dataset.points = "0";
      caption.textContent = "";
      return;
    }
    const main = units.includes(measure === "cost" ? "money" : "kWh") ? (measure === "cost" ? "money" : "kWh") : units[0];
    units.forEach((unit) => {
      const group = [...now.groups.get(unit).entries()];
      const drawn = group.map(([key, l]) => ({
        ...l, flip: key === "reverse",
        colour: key === "forward" || key === "utility" ? colours.main : key === "reverse" ? colours.sent : key === "net" ? colours.net : undefined,
      }));
      if (unit === main && before && before.groups.has(unit)) {
        const ref = before.groups.get(unit).get(measure === "cost" ? "utility" : now.groups.get(unit).has("net") ? "net" : group[0][0]);
        if (ref) {  // by date: the same day of the period, hour of the day (a gap where it has none)
          const at = new Map(places(before.starts, before.from, bucket).map((key, i) => [key, i]));
          const values = places(now.starts, now.from, bucket).map((key) => at.has(key) ? ref.values[at.get(key)] ?? null : null);
          drawn.push({ label: form.compare.value === "year" ? "Same period last year" : "Previous period", kind: "line", colour: colours.before, dash: [6, 4], values });
        }
      }
      let target = box;
      if (unit !== main) {
        const part = document.createElement("div");
        part.className = "chart-unit";
        const heading = document.createElement("h3");
        heading.textContent = `${group.map(([, l]) => l.label).join(", ")} (${unit})`;
        target = document.createElement("div");
        target.className = "chart";
        target.setAttribute("role", "img");
        target.setAttribute("aria-label", heading.textContent);
        part.append(heading, target);
        more.append(part);
      }
      const u = draw(target, { starts: now.starts, durations: now.durations, lines: drawn }, unit, bucket, unit === main ? height : Math.round(height * 0.7));
      if (unit === main) window.usageChart = u;
      charts.push(u);
    });
    box.dataset.points = String(now.starts.length);
    window.usageData = { starts: now.starts, durations: now.durations };  // what the bars are (tests read it)
    caption.textContent = `${whole.format(now.starts.length)} ${bucket === "none" ? "readings" : "bars"}.`;
  }

  // ------------------------------------------------------------------ totals
  function totals(found) {
    const out = new Map();
    for (const [unit, group] of found.groups) {
      for (const [key, l] of group) {
        const vs = l.values.filter((v) => v != null);
        const sum = vs.reduce((a, b) => a + b, 0);
        const value = !vs.length ? null : unit === "$/kWh" ? sum / vs.length : key === "reverse" ? -sum : sum;
        out.set(`${unit}/${key}`, { unit, label: l.label, value });
      }
    }
    return out;
  }
  function change(now, then, unit) {
    if (now == null || then == null || then === 0) return "";
    const word = form.compare.value === "year" ? "the same period last year" : "the previous period";
    const pct = Math.round(((now - then) / Math.abs(then)) * 100);
    const how = pct === 0 ? "the same as" : `${Math.abs(pct)}% ${now > then ? "more" : "less"} than`;
    return `${how} ${word} (${fmt(then, unit)})`;
  }
  function showTotals(now, before, measure) {
    summary.textContent = "";
    const a = totals(now), b = before ? totals(before) : new Map();
    const utility = a.get("money/utility");
    for (const [key, t] of a) {
      if (t.value == null) continue;
      const item = document.createElement("div");
      item.className = "stat";
      item.dataset.total = key;
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = t.unit === "$/kWh" ? `${t.label}, average` : t.label;
      dd.textContent = fmt(t.value, t.unit);
      const then = b.get(key);
      const note = [];
      if (then && then.value != null) note.push(change(t.value, then.value, t.unit));
      if (key.startsWith("money/plan-") && utility && utility.value != null) {
        const diff = Math.round(t.value * 100) - Math.round(utility.value * 100);  // in cents, as shown
        const how = diff === 0 ? "the same as" : `${money(Math.abs(diff) / 100)} ${diff > 0 ? "more" : "less"} than`;
        note.push(`${how} your utility's cost`);
      }
      note.filter(Boolean).forEach((n) => { const s = document.createElement("small"); s.textContent = n; dd.append(s); });
      item.append(dt, dd);
      summary.append(item);
    }
    if (!summary.children.length && measure === "cost") {
      const none = document.createElement("p");
      none.className = "meta";
      none.textContent = "No costs for these dates: your utility sent none, and no rate plan is priced (see Rate plans below).";
      summary.append(none);
    }
  }

  // ------------------------------------------------------------------ controls
  let asked = 0;
  async function load() {
    const a = day(form.start.value), b = day(form.end.value);
    if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime()) || a > b) return;
    periodLabel.value = dates(a, b);
    periodLabel.textContent = dates(a, b);
    document.querySelectorAll(".downloads a").forEach((link) => {
      const url = new URL(link.href);
      url.searchParams.set("start", text(a));
      url.searchParams.set("end", text(b));
      link.href = url.toString();
    });
    const mine = ++asked;
    const other = comparedDates(a, b);
    box.setAttribute("aria-busy", "true");
    try {
      const [now, before] = await Promise.all([readings(a, b), other ? readings(...other) : null]);
      if (mine !== asked) return;  // a newer choice is on its way
      currency = (now.series.find((s) => s.currency) || {}).currency || "USD";
      const measure = form.measure.value;
      const shown = lines(now, measure, a), then = before ? lines(before, measure, other[0]) : null;
      drawAll(shown, then, measure);
      showTotals(shown, then, measure);
    } catch (err) {
      box.textContent = `The readings could not be loaded: ${err.message || err}`;
    } finally {
      box.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("change", (e) => {
    const name = e.target.name;
    if (name === "view") {
      const v = VIEWS[view()];
      if (v.dates) setDates(...v.dates(day(form.end.value)));
      if (v.bars) form.aggregate.value = v.bars;
    } else if (name === "start" || name === "end") {
      form.querySelector("#view-dates").checked = true;
    }
    load();
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  for (const [id, n] of [["previous", -1], ["next", 1]]) {
    document.getElementById(id).addEventListener("click", () => {
      setDates(...VIEWS[view()].move(day(form.start.value), day(form.end.value), n));
      load();
    });
  }

  // Pan and zoom without a mouse drag: arrow keys pan, + and - zoom (the chart takes focus);
  // Ctrl + wheel zooms around the pointer.
  function zoom(fraction, factor, centre) {
    const u = window.usageChart;
    if (!u) return;
    const min = u.scales.x.min, max = u.scales.x.max, width = max - min;
    const [lo, hi] = [u.data[0][0], u.data[0][u.data[0].length - 1]];
    let a = min + width * fraction, b = max + width * fraction;
    if (factor) {
      const c = centre ?? (min + max) / 2;
      a = c - (c - min) * factor;
      b = c + (max - c) * factor;
    }
    if (b - a > hi - lo) { a = lo; b = hi; }
    if (a < lo) { b += lo - a; a = lo; }
    if (b > hi) { a -= b - hi; b = hi; }
    u.setScale("x", { min: a, max: b });
  }
  box.addEventListener("keydown", (e) => {
    const moves = { ArrowLeft: [-0.25], ArrowRight: [0.25], "+": [0, 0.5], "=": [0, 0.5], "-": [0, 2] };
    if (!(e.key in moves)) return;
    e.preventDefault();
    zoom(...moves[e.key]);
  });
  box.addEventListener("wheel", (e) => {
    const u = window.usageChart;
    if (!u || (!e.ctrlKey && !e.shiftKey)) return;  // plain scrolling still scrolls the page
    e.preventDefault();
    zoom(0, e.deltaY < 0 ? 0.75 : 1 / 0.75, u.posToVal(e.clientX - u.over.getBoundingClientRect().left, "x"));
  }, { passive: false });
  let resizing = 0;
  window.addEventListener("resize", () => {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(() => charts.forEach((u) => u.setSize({ width: u.root.parentElement.clientWidth, height: u.height })), 150);
  });

  if (window.uPlot) load(); else box.textContent = "Charts need the app's vendor files (run make); the downloads below work without them.";
})();
