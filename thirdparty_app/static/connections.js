// "Waiting for data" that updates itself: while an authorization waits, its state, the reason
// (what the job is doing, its attempts) and the readings stored so far are asked for every
// two seconds; when one turns active or failed the page is loaded again, with the new usage
// points. (A file: the Content-Security-Policy allows no inline script.)
(function () {
  "use strict";
  const table = document.getElementById("connections");
  if (!table || !table.dataset.statusUrl) {
    return;
  }
  const numbers = new Intl.NumberFormat("en-US");

  function show(row, found) {
    const state = row.querySelector(".state");
    state.textContent = found.state;
    state.className = "state state-" + found.status;
    const reason = row.querySelector(".reason");
    reason.textContent = "";
    const text = [found.reason, found.readings ? numbers.format(found.readings) + " readings so far" : ""]
      .filter(Boolean).join(" · ");
    if (text) {
      reason.appendChild(document.createElement("br"));
      reason.appendChild(document.createTextNode(text));
    }
    row.querySelector(".readings").textContent = numbers.format(found.readings);
  }

  function showAll(found) {
    let changed = false;
    for (const c of found) {
      const row = table.querySelector(`tr[data-connection="${c.id}"]`);
      if (!row) {
        continue;
      }
      if (row.dataset.status === "waiting" && c.status !== "waiting") {
        changed = true;
      }
      show(row, c);
    }
    if (changed) {
      window.location.reload();
      return false;
    }
    return found.some((c) => c.status === "waiting");
  }

  window.pollStatus(() => table.dataset.statusUrl, showAll);
})();
