// A link to a line of the run's log (#L12) opens the folded log and shows the line: a closed
// <details> hides its content from fragment navigation in some browsers. Without JavaScript
// the log stays folded, one click away.
"use strict";
(function () {
  var log = document.getElementById("log");
  if (!log) return;
  function show() {
    var match = /^#L\d+$/.exec(window.location.hash);
    if (!match) return;
    var line = document.getElementById(window.location.hash.slice(1));
    if (!line || !log.contains(line)) return;
    log.open = true;
    line.scrollIntoView({ block: "center" });
  }
  window.addEventListener("hashchange", show);
  show();
})();
