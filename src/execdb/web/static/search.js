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
