// An upload's page while a worker checks and ingests the file: the step and its progress from
// the status route, then the page again with the results. (A file, not inline: the
// Content-Security-Policy allows no inline script; without script the page refreshes itself.)
(function () {
  "use strict";
  const box = document.getElementById("upload-progress");
  if (!box) {
    return;
  }
  const step = document.getElementById("upload-step");
  const bar = document.getElementById("upload-bar");

  async function poll() {
    try {
      const answer = await fetch(box.dataset.statusUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (answer.ok) {
        const state = await answer.json();
        if (state.finished) {
          window.location.reload();
          return;
        }
        step.textContent = (state.step || "Waiting for a worker") + "…";
        if (state.progress === null) {
          bar.removeAttribute("value");
          bar.textContent = "";
        } else {
          bar.value = state.progress;
          bar.textContent = Math.round(state.progress * 100) + " %";
        }
      }
    } catch (err) {
      // the next poll tries again
    }
    window.setTimeout(poll, 1000);
  }

  window.setTimeout(poll, 500);
})();
