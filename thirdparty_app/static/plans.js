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
  let polls = 0;

  async function fresh() {
    const answer = await fetch(window.location.href, { credentials: "same-origin" });
    if (!answer.ok) {
      return null;
    }
    return new DOMParser().parseFromString(await answer.text(), "text/html").getElementById("plan-comparison");
  }

  async function poll() {
    polls += 1;
    try {
      const answer = await fetch(area.dataset.statusUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (answer.ok) {
        const found = await answer.json();
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
          if (!area.dataset.statusUrl) {
            return;
          }
        }
      }
    } catch (err) {
      // the next poll tries again
    }
    window.setTimeout(poll, polls < 150 ? 2000 : 10000);  // slower after five minutes
  }

  window.setTimeout(poll, 1000);
})();
