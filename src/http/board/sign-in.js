"use strict";
// The sign-in page: signs in with the server's own sign-in (`POST login`), which sets the
// session cookies, then opens the board.
(() => {
  const { t, apply } = window.presenceTexts;
  apply();
  document.title = t("signInTitle");
  const form = document.getElementById("sign-in");
  const error = document.getElementById("sign-in-error");
  const submit = document.getElementById("sign-in-submit");
  const reasons = { 401: "signInWrong", 403: "signInRefused", 429: "signInBusy", 503: "signInBusy" };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const response = await fetch("login", {
        method: "POST",
        credentials: "same-origin",
        body: new URLSearchParams(new FormData(form)),
      });
      if (response.ok) {
        location.assign("./");
        return;
      }
      // A refusal names its reason (sessions turned off, a page of another origin, ...).
      let detail = "";
      try { detail = (await response.json()).ErrorMessage ?? ""; } catch { /* no body */ }
      error.textContent = t(reasons[response.status] ?? "signInFailed", { status: response.status, detail });
      document.getElementById("password").select();
    } catch {
      error.textContent = t("networkError");
    } finally {
      submit.disabled = false;
    }
  });
})();
