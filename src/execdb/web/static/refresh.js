// Keeps the dashboard's figures current: every 30 seconds it fetches the page again and
// swaps in the sections marked data-live. The checkbox turns it off (remembered in this
// browser). Without JavaScript the page is simply static.
"use strict";
(function () {
  var box = document.getElementById("auto-refresh");
  var stamp = document.getElementById("updated");
  if (!box || !window.fetch || !window.DOMParser) return;
  var key = "execdb.autoRefresh";
  var timer = null;
  try { box.checked = window.localStorage.getItem(key) !== "off"; } catch (e) { /* private mode */ }

  function refresh() {
    fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var replacement = fresh.getElementById(old.id);
          // Keep the section that holds the focus, so a keyboard user is not thrown out.
          if (replacement && !old.contains(document.activeElement)) old.replaceWith(replacement);
        });
        var freshStamp = fresh.getElementById("updated");
        if (freshStamp && stamp) stamp.innerHTML = freshStamp.innerHTML;
      })
      .catch(function () {
        if (stamp) stamp.textContent = "could not update; will try again";
      });
  }

  function apply() {
    if (timer) window.clearInterval(timer);
    timer = box.checked ? window.setInterval(refresh, 30000) : null;
    try { window.localStorage.setItem(key, box.checked ? "on" : "off"); } catch (e) { /* ignore */ }
  }

  window.execdbRefresh = refresh;  // lets tests (and the console) update at once
  box.addEventListener("change", apply);
  apply();
})();
