// Asking a status route again and again, for the pages that fill in by themselves (the
// authorizations, a rate plan's pricing, an upload being checked): `pollStatus(url, handle,
// timing)` asks `url()` for JSON after `timing.first` ms, then every `timing.every` ms
// (every `timing.slowly` ms after `timing.slowAfter` asks) and gives each answer to
// `handle`, until it returns false. A failed ask or answer is asked again at the next turn.
// Without `timing`: after 1 s, then every 2 s, every 10 s after five minutes.
// (A file: the Content-Security-Policy allows no inline script.)
window.pollStatus = function (url, handle, timing) {
  "use strict";
  timing = timing || { first: 1000, every: 2000, slowAfter: 150, slowly: 10000 };
  let polls = 0;

  async function poll() {
    polls += 1;
    try {
      const answer = await fetch(url(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (answer.ok && (await handle(await answer.json())) === false) {
        return;
      }
    } catch (err) {
      // the next poll tries again
    }
    const slow = timing.slowAfter !== undefined && polls >= timing.slowAfter;
    window.setTimeout(poll, slow ? timing.slowly : timing.every);
  }

  window.setTimeout(poll, timing.first);
};
