// The document upload form, made friendlier where JavaScript runs (without it the form posts
// as it is): a file dropped on the file field is chosen as if picked, and while htmx sends the
// form a progress bar shows how much has gone.
(function () {
  "use strict";

  function ready() {
    const form = document.querySelector("form[data-upload]");
    if (!form || form.dataset.uploadReady) return;
    form.dataset.uploadReady = "yes";
    const input = form.querySelector("input[type=file]");
    const zone = input && input.closest(".field");
    if (!zone) return;
    zone.classList.add("drop");
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("dragging");
      if (e.dataTransfer && e.dataTransfer.files.length > 0) input.files = e.dataTransfer.files;
    });
  }

  function progress(e) {
    const form = e.target.closest ? e.target.closest("form[data-upload]") : null;
    const box = form && form.querySelector(".upload-progress");
    if (!box || !e.detail || !e.detail.lengthComputable) return;
    box.hidden = false;
    box.querySelector("progress").value = Math.round((100 * e.detail.loaded) / e.detail.total);
  }

  document.addEventListener("DOMContentLoaded", ready);
  document.addEventListener("htmx:afterSettle", ready);
  document.addEventListener("htmx:xhr:progress", progress);
  if (document.readyState !== "loading") ready();
})();
