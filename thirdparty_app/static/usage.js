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
      s.points.forEach((p) => { ys[index.get(Date.parse(p.start) / 1000)] = p[measure]; });
      data.push(ys);
      series.push({ label: `${flows[s.flow] || s.flow || "reading"} (${unitOf(s)})`, stroke: colours[n % colours.length],
                    width: 1.5, fill: colours[n % colours.length] + "22", value: (u, v) => v == null ? "-" : v.toFixed(2) });
    });
    const opts = {
      width: box.clientWidth || 800, height: 320, series,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), box.dataset.zone),
      axes: [{}, { label: body.series[0] ? unitOf(body.series[0]) : "" }],
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

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  if (window.uPlot) load(); else box.textContent = "Charts need the app's vendor files (run make).";
})();
