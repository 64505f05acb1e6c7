// Leave blank fields out of the search's URL, so that a shared link shows only the filters
// that were set. The search works the same without this script: the server ignores blanks.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.classList || !form.classList.contains("filters")) return;
  Array.prototype.forEach.call(form.elements, function (field) {
    if (field.name && field.type === "text" && !field.value.trim()) field.disabled = true;
  });
  // Enable them again if the page is restored from the back/forward cache.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
  }, { once: true });
});

// On a narrow screen the form would fill more than a screen before the first result: fold
// it under its summary. A form that holds a refused filter stays open, to be put right.
(function () {
  var folded = document.getElementById("search-form");
  if (!folded || folded.hasAttribute("data-keep-open")) return;
  if (window.matchMedia("(max-width: 40rem)").matches) folded.open = false;
})();
