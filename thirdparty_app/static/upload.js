// Uploads: while the file is sent, the form says so (a large file takes a while); on the
// upload's page while a worker checks and ingests it, the step and its progress from the status
// route, then the page again with the results. (A file, not inline: the
// Content-Security-Policy allows no inline script; without script the page refreshes itself.)
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      const file = form.querySelector("input[type=file]").files[0];
      button.disabled = true;
      button.textContent = "Uploading…";
      form.setAttribute("aria-busy", "true");
      const size = file ? ` (${new Intl.NumberFormat("en-US").format(Math.round(file.size / 1024))} KB)` : "";
      document.getElementById("sending").textContent = `Sending the file${size}: this page moves on when it has arrived.`;
    });
  }
  const box = document.getElementById("upload-progress");
  if (!box) {
    return;
  }
  const step = document.getElementById("upload-step");
  const bar = document.getElementById("upload-bar");

  function show(state) {
    if (state.finished) {
      window.location.reload();
      return false;
    }
    step.textContent = (state.step || "Waiting for a worker") + "…";
    if (state.progress === null) {
      bar.removeAttribute("value");
      bar.textContent = "";
    } else {
      bar.value = state.progress;
      bar.textContent = Math.round(state.progress * 100) + " %";
    }
    return true;
  }

  window.pollStatus(() => box.dataset.statusUrl, show, { first: 500, every: 1000 });
})();
