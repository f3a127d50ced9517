// phr portal: live updates. When the portal says a change from another device has entered the
// record (server-sent events from /events), fetch this page again and put its new main part in
// place, unless the person is filling in a form. Without JavaScript, a reload shows the same.
// phr's own file (no build step); the Content-Security-Policy allows it as a script of 'self'.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var busy = false;
  var again = false;

  // A page with a form field the person can type in is left alone: redrawing it would throw
  // away what they are writing.
  function beingFilledIn(main) {
    return main.querySelector("input:not([type=hidden]), textarea, select") !== null;
  }

  function announce() {
    var note = document.getElementById("live-note");
    if (note) {
      note.textContent = "";
      note.textContent = note.getAttribute("data-text") || "";
    }
  }

  function done() {
    busy = false;
    if (again) {
      again = false;
      redraw();
    }
  }

  function redraw() {
    var main = document.getElementById("main");
    if (!main || beingFilledIn(main)) {
      return;
    }
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (reply) {
        if (!reply.ok || reply.redirected) {
          throw new Error("not redrawn: " + reply.status);
        }
        return reply.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var current = document.getElementById("main");
        if (fresh && current && !beingFilledIn(current)) {
          current.innerHTML = fresh.innerHTML;
          if (window.htmx) {
            window.htmx.process(current);
          }
          announce();
        }
      })
      .catch(function () {})
      .then(done);
  }

  var source = new EventSource("/events");
  source.addEventListener("changed", redraw);
  // Marks the page as listening (the browser tests wait for it before changing the record).
  source.addEventListener("open", function () {
    document.documentElement.setAttribute("data-live", "open");
  });
})();
