// Critique Loop, the comparison page: 1/2/3/4 choose, R reason, Ctrl+Enter submits, S skips.
// The page works without this file (plain form posts); it only makes voting faster.
(function () {
  "use strict";

  const CHOICES = { 1: "left", 2: "right", 3: "tie", 4: "both_bad" };
  let shownAt = Date.now();

  function isTyping(el) {
    if (!el || !el.closest) return false;
    if (el.matches("input[type=radio], input[type=checkbox], button")) return false;
    return Boolean(el.closest("input, textarea, select, [contenteditable]"));
  }

  function choose(value) {
    const radio = document.querySelector("[data-vote-form] [name=choice][value=" + value + "]");
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function submit(form) {
    if (!form) return false;
    const seconds = form.querySelector("[name=seconds_spent]");
    if (seconds) seconds.value = Math.round((Date.now() - shownAt) / 1000);
    form.requestSubmit();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (!document.querySelector("[data-compare]")) return;
    const target = event.target;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      const skipForm = target.closest && target.closest("#pair-skip-form");
      if (submit(skipForm || document.querySelector("form[data-vote-form]"))) event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      if (isTyping(target)) target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(target)) return;
    let handled = false;
    if (CHOICES[event.key]) handled = choose(CHOICES[event.key]);
    else if (event.key === "s" || event.key === "S") handled = submit(document.getElementById("pair-skip-form"));
    else if (event.key === "r" || event.key === "R") {
      const reason = document.querySelector("[data-vote-form] [name=reason]");
      if (reason) reason.focus();
      handled = Boolean(reason);
    }
    if (handled) event.preventDefault();
  });

  // After each swap: the new pair's heading takes the focus (never the reason box the old
  // pair's form had), and the live region says what happened to the vote.
  document.addEventListener("htmx:afterSettle", function (event) {
    const section = document.querySelector("[data-compare]");
    if (!section) return;
    shownAt = Date.now();
    const heading = document.getElementById("pair-heading");
    if (heading) heading.focus();
    const status = document.getElementById("compare-status");
    if (status) {
      status.textContent = "";
      // A fresh text node, so screen readers announce the same words twice in a row.
      window.setTimeout(function () {
        status.textContent = section.dataset.notice || "";
      }, 50);
    }
  });
})();
