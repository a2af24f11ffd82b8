// The 503 page (templates/503.html): try the page again after Retry-After seconds, as
// long as the person does not say stop. Only pages that were a GET; a POST's fields wait
// on the page for "Send again".
(function () {
  "use strict";
  const box = document.querySelector("[data-auto-retry]");
  if (!box) return;
  let left = Number(box.dataset.autoRetry) || 5;
  const count = box.querySelector("[data-seconds]");
  const stop = box.querySelector("[data-stop]");
  box.hidden = false;
  const timer = setInterval(function () {
    left -= 1;
    if (count) count.textContent = String(Math.max(left, 0));
    if (left <= 0) {
      clearInterval(timer);
      window.location.reload();
    }
  }, 1000);
  stop.addEventListener("click", function () {
    clearInterval(timer);
    box.textContent = "Stopped. Use “Try again now” when you are ready.";
  });
})();
