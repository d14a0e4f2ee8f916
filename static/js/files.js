// The Files page and a team's page: an upload shows its progress; once in, the form is
// cleared for the next (htmx posts it; the new rows and their live status come from the server).
(function () {
  "use strict";

  function parts(event) {
    var form = event.target.closest && event.target.closest(".upload-form");
    return form ? { form: form, bar: form.querySelector(".upload-progress") } : null;
  }
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var upload = parts(event);
    if (upload) { upload.bar.value = 0; upload.bar.hidden = false; }
  });
  document.body.addEventListener("htmx:xhr:progress", function (event) {
    var upload = parts(event);
    if (upload && event.detail.lengthComputable) {
      upload.bar.value = Math.max(upload.bar.value, Math.round(100 * event.detail.loaded / event.detail.total));
    }
  });
  // A file uploaded again (the same bytes are one file) comes back as the row it had: it is
  // listed once, on top.
  function listedOnce() {
    var seen = {};
    document.querySelectorAll("#file-list > li[id]").forEach(function (row) {
      if (seen[row.id]) { row.remove(); } else { seen[row.id] = true; }
    });
  }
  document.body.addEventListener("htmx:afterSettle", listedOnce);
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var upload = parts(event);
    if (!upload) { return; }
    listedOnce();
    upload.bar.hidden = true;
    if (event.detail.successful) { upload.form.reset(); }
  });
})();
