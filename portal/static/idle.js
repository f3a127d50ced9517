// phr portal: the warning before an idle session ends. The page says when the session ends
// if nothing is done (#idle, its data-idle-seconds the session's idle limit); two minutes
// before that (or at a quarter of the limit, if it is short) this script shows #idle-warning
// with a countdown (told once to screen readers through the status line) and a link that reloads the page, which keeps the session alive. Without
// JavaScript the page's own line says the same. phr's own file (no build step, no inline script).
(function () {
  "use strict";
  var shown = null;
  var deadline = 0;
  var warnFor = 0;

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // A new page (a full load or one htmx swapped in) starts the countdown again.
  function restart(note) {
    shown = note;
    var idle = parseInt(note.getAttribute("data-idle-seconds") || "0", 10);
    deadline = Date.now() + idle * 1000;
    warnFor = Math.min(120, Math.floor(idle / 4)) * 1000;
  }

  function tick() {
    var note = document.getElementById("idle");
    var banner = document.getElementById("idle-warning");
    if (!note || !banner) {
      return;
    }
    if (note !== shown) {
      restart(note);
    }
    var left = deadline - Date.now();
    if (left > warnFor) {
      banner.hidden = true;
      return;
    }
    left = Math.max(0, Math.ceil(left / 1000));
    var text = (banner.getAttribute("data-text") || "").replace("{left}", Math.floor(left / 60) + ":" + two(left % 60));
    var line = banner.querySelector("p");
    if (line && line.textContent !== text) {
      line.textContent = text;
    }
    var stay = banner.querySelector("a");
    if (stay) {
      stay.setAttribute("href", window.location.pathname + window.location.search);
    }
    if (banner.hidden) {
      // Said once by screen readers (the page's status line), not at every second.
      var status = document.getElementById("live-note");
      if (status) {
        status.textContent = text;
      }
    }
    banner.hidden = false;
  }

  window.setInterval(tick, 1000);
  tick();
})();
