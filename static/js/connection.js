// Critique Loop: when an htmx request fails, the page stays as it is and says why.
// Loaded by base.html beside app.js; without JavaScript the server's pages say it instead
// (annotate/session.py).
(function () {
  "use strict";

  // When a request fails ----------------------------------------------------------------
  // Nothing is swapped in: the page, what was typed and the stored draft stay as they are,
  // and a message above the page says what happened. A session that ended (another tab
  // logged out, cookies cleared) answers with X-Session-Ended: where to log in again
  // (annotate/session.py). A 503 (the database is unreachable) is tried again after its
  // Retry-After; so is a request that could not reach the server at all.

  const DEFAULT_RETRY_SECONDS = 5;
  const MAX_RETRY_SECONDS = 120;
  let retryTimer = null;

  function pageAlert(parts, kind) {
    let box = document.getElementById("page-alert");
    if (!box) {
      box = document.createElement("div");
      box.id = "page-alert";
      box.setAttribute("role", "alert");
      (document.getElementById("main") || document.body).prepend(box);
    }
    box.className = "page-alert " + (kind || "");
    box.replaceChildren(...parts);
    return box;
  }

  function clearAlert() {
    const box = document.getElementById("page-alert");
    if (box) box.remove();
  }

  function loginPath() {
    return document.body.dataset.loginUrl || "/accounts/login/";
  }

  function sessionEnded(goTo) {
    const here = location.pathname + location.search;
    const login = loginPath();
    // Only a path of this site: the header comes from our server, but check anyway.
    const href =
      goTo && goTo.startsWith("/") && !goTo.startsWith("//")
        ? goTo
        : login + "?next=" + encodeURIComponent(here);
    const link = document.createElement("a");
    link.href = href;
    link.id = "log-in-again";
    // Logged in again elsewhere (a new CSRF token): the page itself, reloaded, is enough.
    const stale = !href.startsWith(login);
    link.textContent = stale ? "Reload the page" : "Log in again";
    const message = stale
      ? "This page is out of date: you logged in again since it was opened. Your draft is kept. "
      : "Your session ended; log in again. Your draft is kept. ";
    pageAlert([message, link], "ended");
    link.focus();
  }

  function retryAfterSeconds(header) {
    let seconds = Number(header);
    if (!header || Number.isNaN(seconds)) {
      const when = Date.parse(header || "");
      seconds = Number.isNaN(when) ? DEFAULT_RETRY_SECONDS : (when - Date.now()) / 1000;
    }
    return Math.min(Math.max(seconds, 1), MAX_RETRY_SECONDS);
  }

  // Send the same request again: the form once more (with the button that sent it), or
  // the same event on the element that made it.
  function retry(config, seconds) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      const elt = config && config.elt;
      if (!elt || !elt.isConnected) return;
      const event = config.triggeringEvent;
      if (elt.tagName === "FORM") {
        const submitter = event && event.submitter;
        elt.requestSubmit(submitter && submitter.form === elt ? submitter : undefined);
      } else if (window.htmx) {
        window.htmx.trigger(elt, event ? event.type : "click");
      }
    }, seconds * 1000);
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    const detail = event.detail;
    const xhr = detail.xhr;
    const ended = xhr.getResponseHeader("X-Session-Ended");
    // A login_required view elsewhere redirects; the XHR followed it to the login page.
    const toLogin = xhr.responseURL && new URL(xhr.responseURL).pathname === loginPath();
    if (ended !== null || toLogin) {
      detail.shouldSwap = false;
      detail.isError = false;
      sessionEnded(ended);
      return;
    }
    if (xhr.status === 503) {
      detail.shouldSwap = false;
      detail.isError = false;
      const seconds = retryAfterSeconds(xhr.getResponseHeader("Retry-After"));
      pageAlert(["The server is unavailable; retrying… Your draft is kept."], "retrying");
      retry(detail.requestConfig, seconds);
      return;
    }
    if (xhr.status >= 400) {
      detail.shouldSwap = false;
      detail.isError = false;
      pageAlert(
        [
          "The server answered " + xhr.status + (xhr.statusText ? " " + xhr.statusText : "") +
            " and nothing was saved. Your draft is kept; reload the page to try again.",
        ],
        "failed"
      );
      return;
    }
    clearAlert();
  });

  document.addEventListener("htmx:sendError", function (event) {
    pageAlert(["Cannot reach the server; retrying… Your draft is kept."], "retrying");
    retry(event.detail.requestConfig, DEFAULT_RETRY_SECONDS);
  });
})();
