// Polls the journal for entries newer than the newest row shown and prepends them (no framework, no CDN).
(function () {
  "use strict";
  var body = document.getElementById("journal-rows");
  if (!body) { return; }
  function newest() {
    var first = body.querySelector("tr[data-id]");
    return first ? first.getAttribute("data-id") : "0";
  }
  function poll() {
    fetch(body.getAttribute("data-rows-url") + "?after=" + encodeURIComponent(newest()), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (html.trim()) {
          body.insertAdjacentHTML("afterbegin", html);
          var empty = document.getElementById("journal-empty");
          if (empty) { empty.remove(); }
        }
      })
      .catch(function () { /* the portal restarted or went away: try again later */ })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);
})();
