// Critique Loop: keyboard shortcuts, focus after swaps, highlighted passages, drafts,
// length counters and the task timer. Failed requests: connection.js.
// Every page works without this file (plain forms); it only makes the work faster.
(function () {
  "use strict";

  const DRAFT_PREFIX = "critique-loop:draft:";
  const DRAFT_DAYS = 14;

  // Is the user typing somewhere, so single-letter keys must go to the field?
  function isTyping(el) {
    if (!el || !el.closest) return false;
    if (el.matches("input[type=radio], input[type=checkbox], button")) return false;
    return Boolean(el.closest("input, textarea, select, [contenteditable]"));
  }

  function storage() {
    try {
      return window.localStorage;
    } catch (err) {
      return null; // private mode or storage disabled: no drafts, everything else works
    }
  }

  // Time on task ------------------------------------------------------------------------
  // Counts only while the tab is visible; kept per response across htmx swaps.
  const timers = new Map();

  function timerFor(id, startSeconds) {
    if (!timers.has(id)) {
      timers.set(id, { ms: (startSeconds || 0) * 1000, since: document.hidden ? null : Date.now() });
    }
    return timers.get(id);
  }

  function seconds(timer) {
    const running = timer.since === null ? 0 : Date.now() - timer.since;
    return Math.round((timer.ms + running) / 1000);
  }

  document.addEventListener("visibilitychange", function () {
    for (const timer of timers.values()) {
      if (document.hidden && timer.since !== null) {
        timer.ms += Date.now() - timer.since;
        timer.since = null;
      } else if (!document.hidden && timer.since === null) {
        timer.since = Date.now();
      }
    }
  });

  // Highlighted passages ----------------------------------------------------------------
  // Spans are [start, end) offsets in characters (code points) of the stored response text,
  // as Python counts them; the browser counts UTF-16 units, hence toCodePoints().

  function setupSpans(container) {
    const input = container.querySelector("input[name=spans]");
    const textNode = document.getElementById("response-text");
    const source = document.getElementById("source-view");
    const rendered = document.getElementById("response-rendered");
    const panel = container.querySelector("[data-span-panel]");
    if (!input || !textNode || !source || !panel) return null;
    const raw = JSON.parse(textNode.textContent);
    const chars = Array.from(raw);
    const list = panel.querySelector("[data-span-list]");
    const statusEl = panel.querySelector("[data-span-status]");
    let spans = [];
    try {
      spans = JSON.parse(input.value || "[]");
    } catch (err) {
      spans = [];
    }
    panel.hidden = false;

    function toCodePoints(utf16Offset) {
      return Array.from(raw.slice(0, utf16Offset)).length;
    }

    function say(message) {
      statusEl.textContent = message;
    }

    function render() {
      input.value = spans.length ? JSON.stringify(spans) : "";
      source.textContent = "";
      let pos = 0;
      for (const [start, end] of spans) {
        source.append(chars.slice(pos, start).join(""));
        const mark = document.createElement("mark");
        mark.textContent = chars.slice(start, end).join("");
        source.append(mark);
        pos = end;
      }
      source.append(chars.slice(pos).join(""));
      list.textContent = "";
      spans.forEach(function ([start, end], i) {
        const item = document.createElement("li");
        const quote = document.createElement("q");
        const passage = chars.slice(start, end).join("");
        quote.textContent = passage.length > 140 ? passage.slice(0, 140) + "…" : passage;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "small";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove highlight " + (i + 1));
        remove.addEventListener("click", function () {
          spans.splice(i, 1);
          render();
          say("Highlight removed.");
        });
        item.append(quote, " ", remove);
        list.append(item);
      });
      container.dispatchEvent(new Event("spans-changed", { bubbles: true }));
    }

    function add(start, end) {
      if (end <= start) return;
      // Merge with overlapping spans so the list stays readable.
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
      say("Highlighted " + (end - start) + " characters.");
    }

    // Where a passage selected in the rendered Markdown sits in the raw text: the same
    // words, with any run of whitespace matching any other.
    function locate(text) {
      const words = text.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
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
      if (!selection || selection.isCollapsed || !selection.rangeCount) {
        say("Select a passage of the response first, then press H.");
        return;
      }
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
        else {
          document.getElementById("source-details").open = true;
          say("Formatting hides where that passage is; select it in the plain text instead.");
        }
      } else {
        say("Select text inside the response.");
        return;
      }
      selection.removeAllRanges();
    }

    render();
    return { fromSelection: fromSelection };
  }

  // Drafts ------------------------------------------------------------------------------

  function pruneDrafts(store) {
    const cutoff = Date.now() - DRAFT_DAYS * 24 * 3600 * 1000;
    for (let i = store.length - 1; i >= 0; i--) {
      const key = store.key(i);
      if (!key || !key.startsWith(DRAFT_PREFIX)) continue;
      try {
        if ((JSON.parse(store.getItem(key)).saved || 0) < cutoff) store.removeItem(key);
      } catch (err) {
        store.removeItem(key);
      }
    }
  }

  function restoreDraft(form, key, store) {
    const critique = form.querySelector("[name=critique]");
    const spans = form.querySelector("[name=spans]");
    const untouched =
      !critique.value && !form.querySelector("[name=verdict]:checked") && !spans.value;
    let draft = null;
    try {
      draft = JSON.parse(store.getItem(key) || "null");
    } catch (err) {
      draft = null;
    }
    // A form the server re-rendered with errors already holds what was typed.
    if (!untouched || !draft) return draft;
    if (!draft.verdict && !(draft.critique || "").trim() && !draft.spans) return draft;
    if (draft.verdict) {
      const radio = form.querySelector("[name=verdict][value=" + draft.verdict + "]");
      if (radio) radio.checked = true;
    }
    critique.value = draft.critique || "";
    spans.value = draft.spans || "";
    const note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent = "Your unsaved draft was restored.";
    form.prepend(note);
    return draft;
  }

  function setupTaskForm(form) {
    const key = form.dataset.draftKey;
    const id = key.slice(DRAFT_PREFIX.length);
    const store = storage();
    const draft = store ? restoreDraft(form, key, store) : null;
    const timer = timerFor(id, draft && draft.seconds);
    const secondsInput = form.querySelector("[name=seconds_spent]");
    function save() {
      if (!store) return;
      const checked = form.querySelector("[name=verdict]:checked");
      const critique = form.querySelector("[name=critique]").value;
      const spans = form.querySelector("[name=spans]").value;
      // Nothing entered (or all of it taken back): no draft, so no "draft restored" on an
      // empty form next time.
      if (!checked && !critique.trim() && !spans) {
        store.removeItem(key);
        return;
      }
      store.setItem(
        key,
        JSON.stringify({
          verdict: checked ? checked.value : "",
          critique: critique,
          spans: spans,
          seconds: seconds(timer),
          saved: Date.now(),
        })
      );
    }
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    form.addEventListener("spans-changed", save);
    // Capture phase: runs before htmx reads the form.
    form.addEventListener(
      "submit",
      function () {
        secondsInput.value = seconds(timer);
      },
      true
    );
  }

  // Length limits -----------------------------------------------------------------------
  // Text boxes carry data-limit instead of maxlength (which silently cut a paste). Near the
  // limit a counter appears; over it, it says by how much. Characters are counted as the
  // server counts them (code points, not UTF-16 units).

  const COUNTER_FROM = 0.8;

  function setupLimit(box) {
    const limit = Number(box.dataset.limit);
    if (!limit) return;
    const counter = document.createElement("p");
    counter.className = "counter";
    counter.id = (box.id || box.name) + "-counter";
    counter.setAttribute("aria-live", "polite");
    box.after(counter);
    let over = null;
    function update() {
      const text = box.value;
      // Cheap first: the UTF-16 length is never less than the code-point count.
      const length = text.length < limit * COUNTER_FROM ? text.length : Array.from(text).length;
      const show = length >= limit * COUNTER_FROM;
      counter.hidden = !show;
      if (!show) {
        counter.textContent = "";
        box.removeAttribute("aria-describedby");
        return;
      }
      box.setAttribute("aria-describedby", counter.id);
      const isOver = length > limit;
      counter.classList.toggle("over", isOver);
      counter.textContent = isOver
        ? (length - limit).toLocaleString("en") + " characters over the limit of " +
          limit.toLocaleString("en") + ": shorten it before you submit."
        : length.toLocaleString("en") + " of " + limit.toLocaleString("en") + " characters";
      // Speak only when crossing the limit, not on every key.
      if (over !== isOver) counter.setAttribute("aria-live", isOver ? "assertive" : "polite");
      over = isOver;
    }
    box.addEventListener("input", update);
    update();
  }

  // Wiring ------------------------------------------------------------------------------

  const editors = new WeakMap();

  function init() {
    const store = storage();
    const task = document.querySelector("[data-task]");
    if (task && task.dataset.done && store) {
      store.removeItem(DRAFT_PREFIX + task.dataset.done);
      timers.delete(task.dataset.done);
    }
    if (store && !init.pruned) {
      pruneDrafts(store);
      init.pruned = true;
    }
    document.querySelectorAll("[data-judgment-form]").forEach(function (container) {
      if (container.dataset.ready) return;
      container.dataset.ready = "1";
      if (container.dataset.draftKey) setupTaskForm(container);
      const editor = setupSpans(container);
      if (editor) editors.set(container, editor);
    });
    document.querySelectorAll("textarea[data-limit]").forEach(function (box) {
      if (box.dataset.ready) return;
      box.dataset.ready = "1";
      setupLimit(box);
    });
    document.querySelectorAll("[data-highlight]").forEach(function (button) {
      if (button.dataset.ready) return;
      button.dataset.ready = "1";
      button.addEventListener("click", highlight);
    });
  }

  function activeEditor() {
    for (const container of document.querySelectorAll("[data-judgment-form]")) {
      if (editors.has(container)) return editors.get(container);
    }
    return null;
  }

  function highlight() {
    const editor = activeEditor();
    if (editor) editor.fromSelection();
  }

  function toggle(details, focusSelector) {
    if (!details) return;
    details.open = !details.open || Boolean(focusSelector);
    if (details.open && focusSelector) {
      const field = details.querySelector(focusSelector);
      if (field) field.focus();
    }
  }

  function setVerdict(value) {
    const radio = document.querySelector("[data-judgment-form] [name=verdict][value=" + value + "]");
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function clickIfPresent(selector) {
    const el = document.querySelector(selector);
    if (el) el.click();
    return Boolean(el);
  }

  function onCtrlEnter(target) {
    const review = document.querySelector("[data-review]");
    if (review) {
      if (target.closest && target.closest("#edit-details")) return clickIfPresent("#edit-accept");
      if (target.name === "review_note") return clickIfPresent("#reject");
      return false;
    }
    const skipForm = target.closest && target.closest("#skip-form");
    const form = skipForm || document.querySelector("form[data-judgment-form]");
    if (!form) return false;
    form.requestSubmit();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      if (onCtrlEnter(target)) event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      if (isTyping(target)) target.blur();
      const skip = document.getElementById("skip-details");
      if (skip && skip.open && (!target.closest || !target.closest("#skip-details"))) skip.open = false;
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(target)) return;
    const review = document.querySelector("[data-review]");
    let handled = true;
    switch (event.key) {
      case "1":
        handled = setVerdict("positive");
        break;
      case "2":
        handled = setVerdict("negative");
        if (handled) {
          const critique = document.querySelector("[data-judgment-form] [name=critique]");
          if (critique && !review) critique.focus();
        }
        break;
      case "h":
      case "H":
        highlight();
        break;
      case "s":
      case "S":
        toggle(document.getElementById("skip-details"), "textarea");
        handled = Boolean(document.getElementById("skip-details"));
        break;
      case "?":
        document.querySelectorAll("details.shortcuts").forEach((d) => (d.open = !d.open));
        break;
      case "a":
      case "A":
        handled = Boolean(review) && clickIfPresent("#accept");
        break;
      case "r":
      case "R": {
        const note = review && document.querySelector("[name=review_note]");
        if (note) note.focus();
        handled = Boolean(note);
        break;
      }
      case "e":
      case "E":
        handled = Boolean(review);
        if (review) toggle(document.getElementById("edit-details"), "textarea");
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  });

  // After a swap: the focus and what screen readers hear ---------------------------------
  // htmx gives the focus back to the element with the id the focused one had, so after
  // Ctrl+Enter in a critique or a review note the next item's text box had it, and the
  // next "1", "A" or "E" was typed into it. The focus belongs on the new item's heading
  // (tabindex=-1), where every single-key shortcut works; the polite live region in
  // base.html says what happened ("Judgment saved.").

  function announce(message) {
    const region = document.getElementById("announcer");
    if (region && message) region.textContent = message;
  }

  function focusTarget(el) {
    return (
      el.querySelector("h1[tabindex='-1'], h2[tabindex='-1']") ||
      (el.getAttribute("tabindex") === "-1" ? el : null)
    );
  }

  document.addEventListener("DOMContentLoaded", init);
  // afterSwap, not afterSettle: it runs in the same task as the swap, so no key pressed
  // right after the new item appears can land before the focus moves (settling waits 20 ms).
  document.addEventListener("htmx:afterSwap", function (event) {
    const swapped = event.target;
    if (!(swapped instanceof Element) || !swapped.isConnected) return;
    // htmx wires the new content's hx-post only when it settles; a key pressed before that
    // would post the plain form and reload the page. Wire it now (process() is idempotent).
    if (window.htmx) window.htmx.process(swapped);
    init();
    const active = document.activeElement;
    // Only when the focus was in what was replaced: a filter's <select> outside keeps it.
    if (active && active !== document.body && !swapped.contains(active)) return;
    const target = focusTarget(swapped);
    if (target) target.focus({ preventScroll: false });
    announce(swapped.dataset.announce);
  });
})();
