// The highlights editor on a judgment's admin page (annotate/admin_curation.py).
// Spans are [start, end) offsets in characters (code points) of the stored response text,
// as Python counts them and as the task page stores them; the browser counts UTF-16 units.
// Without this script the page offers checkboxes to remove and a box to paste a passage.
(function () {
  "use strict";

  function setup(editor) {
    const input = editor.querySelector("[data-spans-json]");
    const source = editor.querySelector("[data-spans-source]");
    const textNode = document.getElementById(editor.dataset.textId);
    if (!input || !source || !textNode) return;
    const raw = JSON.parse(textNode.textContent);
    const chars = Array.from(raw);
    const statusEl = editor.querySelector("[data-spans-status]");
    const rendered = document.querySelector(".curation-response");
    const renderedResponse = document.querySelector("[data-rendered-response]");
    let spans;
    try {
      spans = JSON.parse(input.value || "[]");
    } catch (err) {
      spans = [];
    }

    // The script takes over: the JSON field is the truth, the fallback controls go away.
    const fallback = editor.querySelector("[data-spans-fallback]");
    if (fallback) {
      fallback.querySelectorAll("input[type=checkbox]").forEach((box) => (box.checked = false));
      fallback.querySelectorAll("textarea").forEach((area) => (area.value = ""));
      fallback.hidden = true;
    }
    const help = editor.querySelector("[data-spans-help]");
    if (help) help.hidden = false;

    function say(message) {
      if (statusEl) statusEl.textContent = message;
    }

    function toCodePoints(utf16Offset) {
      return Array.from(raw.slice(0, utf16Offset)).length;
    }

    function render() {
      input.value = JSON.stringify(spans);
      source.textContent = "";
      let pos = 0;
      spans.forEach(function ([start, end], i) {
        source.append(chars.slice(pos, start).join(""));
        const mark = document.createElement("mark");
        const passage = chars.slice(start, end).join("");
        mark.textContent = passage;
        mark.dataset.index = String(i);
        mark.tabIndex = 0;
        mark.setAttribute("role", "button");
        mark.setAttribute(
          "aria-label",
          "Remove highlight: " + (passage.length > 60 ? passage.slice(0, 60) + "…" : passage)
        );
        source.append(mark);
        pos = end;
      });
      source.append(chars.slice(pos).join(""));
      markRendered();
    }

    // The same highlights on the rendered response, where a passage shows as one run of
    // text (a passage across formatting, or with Markdown syntax in it, stays marked in
    // the plain text only).
    function markRendered() {
      if (!renderedResponse) return;
      renderedResponse.querySelectorAll("mark[data-span]").forEach(function (mark) {
        mark.replaceWith(document.createTextNode(mark.textContent));
      });
      renderedResponse.normalize();
      for (const [start, end] of spans) {
        const passage = chars.slice(start, end).join("").replace(/\s+/g, " ").trim();
        if (!passage) continue;
        const walker = document.createTreeWalker(renderedResponse, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
          const node = walker.currentNode;
          const at = node.textContent.replace(/\s/g, " ").indexOf(passage);
          if (at < 0 || node.parentElement.closest("mark")) continue;
          const rest = node.splitText(at);
          rest.splitText(passage.length);
          const mark = document.createElement("mark");
          mark.dataset.span = start + "-" + end;
          rest.replaceWith(mark);
          mark.append(rest);
          break;
        }
      }
    }

    function add(start, end) {
      if (end <= start) return;
      const merged = [];
      for (const span of spans) {
        if (span[1] < start || span[0] > end) merged.push(span);
        else {
          start = Math.min(start, span[0]);
          end = Math.max(end, span[1]);
        }
      }
      merged.push([start, end]);
      merged.sort((a, b) => a[0] - b[0]);
      spans = merged;
      render();
      say("Highlighted " + (end - start) + " characters. Save to keep it.");
    }

    function remove(index) {
      spans.splice(index, 1);
      render();
      say("Highlight removed. Save to keep the change.");
    }

    // A passage selected in the rendered Markdown: the same words in the raw text, any run
    // of whitespace matching any other, the first place not highlighted yet.
    function locate(text) {
      const words = text
        .trim()
        .split(/\s+/)
        .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      if (!words[0]) return null;
      const pattern = new RegExp(words.join("\\s+"), "g");
      let first = null;
      for (const match of raw.matchAll(pattern)) {
        const start = toCodePoints(match.index);
        const end = toCodePoints(match.index + match[0].length);
        if (first === null) first = [start, end];
        if (!spans.some((s) => s[0] < end && start < s[1])) return [start, end];
      }
      return first;
    }

    function fromSelection() {
      const selection = window.getSelection();
      if (!selection || selection.isCollapsed || !selection.rangeCount) return;
      const range = selection.getRangeAt(0);
      if (source.contains(range.startContainer) && source.contains(range.endContainer)) {
        const before = document.createRange();
        before.selectNodeContents(source);
        before.setEnd(range.startContainer, range.startOffset);
        const start = before.toString().length;
        add(toCodePoints(start), toCodePoints(start + range.toString().length));
      } else if (rendered && rendered.contains(range.commonAncestorContainer)) {
        const found = locate(selection.toString());
        if (found) add(found[0], found[1]);
        else say("Formatting hides where that passage is; select it in the plain text instead.");
      } else {
        return;
      }
      selection.removeAllRanges();
    }

    source.addEventListener("click", function (event) {
      const mark = event.target.closest("mark[data-index]");
      if (mark && window.getSelection().isCollapsed) remove(Number(mark.dataset.index));
    });
    source.addEventListener("keydown", function (event) {
      const mark = event.target.closest("mark[data-index]");
      if (mark && (event.key === "Enter" || event.key === "Delete" || event.key === " ")) {
        event.preventDefault();
        remove(Number(mark.dataset.index));
      }
    });
    document.addEventListener("mouseup", fromSelection);
    document.addEventListener("keyup", function (event) {
      if (event.shiftKey) fromSelection();
    });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-spans-editor]").forEach(setup);
  });
})();
