// The usage point page: fetch readings from the JSON API and draw them with uPlot (served from
// this app; installed by `make`). Drag to zoom, double-click to zoom out.
(function () {
  "use strict";
  const box = document.getElementById("usage-chart");
  const form = document.getElementById("controls");
  const total = document.getElementById("chart-total");
  const colours = ["#0b5ea8", "#d9480f", "#2b8a3e", "#862e9c"];
  // ESPI's flow directions in a customer's words
  const flows = { forward: "used from the grid", reverse: "sent to the grid", net: "net" };
  // readings that are not energy, in words (Pelm's greenhouse-gas emissions are grams of CO2e)
  const measures = { g: "emissions, CO2e" };

  function toEpoch(day, endOfDay) {
    if (!day) return "";
    return day + (endOfDay ? "T23:59:59Z" : "T00:00:00Z");
  }

  function draw(body) {
    const measure = form.measure.value;  // "value" (energy) or "cost"
    const unitOf = (s) => measure === "cost" ? "cost" : (s.unit || "value");
    const times = new Set();
    body.series.forEach((s) => s.points.forEach((p) => times.add(Date.parse(p.start) / 1000)));
    const xs = Array.from(times).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const data = [xs];
    const series = [{}];
    body.series.forEach((s, n) => {
      const ys = new Array(xs.length).fill(null);
      // a missing value stays a gap; two readings at one start (a DST hour given twice) add up
      s.points.forEach((p) => {
        const i = index.get(Date.parse(p.start) / 1000), v = p[measure];
        if (v != null) ys[i] = (ys[i] ?? 0) + v;
      });
      data.push(ys);
      const what = measures[s.unit] || flows[s.flow] || s.flow || "reading";
      series.push({ label: `${what} (${unitOf(s)})`, stroke: colours[n % colours.length], scale: unitOf(s),
                    width: 1.5, fill: colours[n % colours.length] + "22", value: (u, v) => v == null ? "-" : v.toFixed(2) });
    });
    // one y axis per unit: a second unit (grams next to Wh) gets its own, on the right
    const units = [...new Set(series.slice(1).map((s) => s.scale))];
    const axes = [{}].concat(units.map((unit, i) => ({ scale: unit, label: unit, side: i ? 1 : 3, grid: { show: !i } })));
    const opts = {
      width: box.clientWidth || 800, height: 320, series, axes,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), box.dataset.zone),
      cursor: { drag: { x: true, y: false } },
    };
    box.innerHTML = "";
    window.usageChart = new uPlot(opts, data, box);
    const sum = body.series.length ? body.series[0].points.reduce((a, p) => a + (p[measure] || 0), 0) : 0;
    total.textContent = `${xs.length} points; total ${sum.toFixed(measure === "cost" ? 2 : 1)} ${body.series[0] ? unitOf(body.series[0]) : ""}.`;
    box.dataset.points = String(xs.length);
  }

  function load() {
    const params = new URLSearchParams({ aggregate: form.aggregate.value });
    if (form.start.value) params.set("start", toEpoch(form.start.value, false));
    if (form.end.value) params.set("end", toEpoch(form.end.value, true));
    document.querySelectorAll(".downloads a").forEach((a) => {
      const url = new URL(a.href);
      ["start", "end"].forEach((k) => params.has(k) ? url.searchParams.set(k, params.get(k)) : url.searchParams.delete(k));
      a.href = url.toString();
    });
    fetch(`${box.dataset.api}?${params}`).then((r) => r.json()).then(draw).catch((err) => {
      box.textContent = `The readings could not be loaded: ${err}`;
    });
  }

  // Pan and zoom without a mouse drag: arrow keys pan, + and - zoom (the chart takes focus);
  // the mouse wheel zooms around the pointer.
  function view(fraction, zoom, centre) {
    const u = window.usageChart;
    if (!u) return;
    const min = u.scales.x.min, max = u.scales.x.max, span = max - min;
    const [lo, hi] = [u.data[0][0], u.data[0][u.data[0].length - 1]];
    let a = min + span * fraction, b = max + span * fraction;
    if (zoom) {
      const c = centre ?? (min + max) / 2;
      a = c - (c - min) * zoom;
      b = c + (max - c) * zoom;
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
    view(...moves[e.key]);
  });
  box.addEventListener("wheel", (e) => {
    const u = window.usageChart;
    if (!u || !e.ctrlKey && !e.shiftKey) return;  // plain scrolling still scrolls the page
    e.preventDefault();
    const centre = u.posToVal(e.clientX - u.over.getBoundingClientRect().left, "x");
    view(0, e.deltaY < 0 ? 0.75 : 1 / 0.75, centre);
  }, { passive: false });

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  if (window.uPlot) load(); else box.textContent = "Charts need the app's vendor files (run make).";
})();
