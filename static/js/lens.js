// The critique lens: key L previews what training will learn from the critique as typed
// (templates/annotate/lens_panel.html). The page works without this file: the preview
// button posts the form; this only adds the key. app.js owns the other keys and leaves L
// alone; like them, L is ignored while typing (Esc leaves the text box first).
(function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.closest) return false;
    if (el.matches("input[type=radio], input[type=checkbox], button")) return false;
    return Boolean(el.closest("input, textarea, select, [contenteditable]"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "l" && event.key !== "L") return;
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const button = document.querySelector("[data-lens-preview]");
    if (!button) return;
    event.preventDefault();
    // On the review page the button sits in "Edit before accepting": show what it answers.
    const details = button.closest("details");
    if (details) details.open = true;
    button.click();
  });
})();
