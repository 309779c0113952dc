// A rate plan page that fills in by itself: while a plan is priced, how it goes is asked for
// every two seconds (each plan's card shows the job's latest word); once no plan is pricing,
// the page is asked for again and its comparison and plans put in place, without a reload.
// (A file: the Content-Security-Policy allows no inline script.)
(function () {
  "use strict";
  let area = document.getElementById("plan-comparison");
  if (!area || !area.dataset.statusUrl) {
    return;
  }

  async function fresh() {
    const answer = await fetch(window.location.href, { credentials: "same-origin" });
    if (!answer.ok) {
      return null;
    }
    return new DOMParser().parseFromString(await answer.text(), "text/html").getElementById("plan-comparison");
  }

  async function show(found) {
    for (const p of found) {
      const state = area.querySelector(`li[data-plan="${p.id}"] .pricing-state`);
      if (state && p.status === "pricing") {
        state.textContent = p.reason ? `pricing… (${p.reason})` : "pricing…";
      }
    }
    const done = !found.some((p) => p.status === "pricing") ? await fresh() : null;
    if (done) {
      area.replaceWith(done);
      area = done;
      return Boolean(area.dataset.statusUrl);
    }
    return true;
  }

  window.pollStatus(() => area.dataset.statusUrl, show);
})();
