// The dump upload's progress bar on the incident page: htmx fires htmx:xhr:progress on the form while
// the upload (and then the answer) streams; a <progress> element shows the upload's share sent.
// A static file because the console's CSP forbids inline script.
(function () {
  "use strict";
  function bar(form) {
    return form.querySelector("progress");
  }
  document.addEventListener("htmx:xhr:loadstart", function (evt) {
    var form = evt.target;
    if (!form.matches || !form.matches("form[data-upload]")) return;
    var progress = bar(form);
    progress.value = 0;
    progress.hidden = false;
    form.setAttribute("aria-busy", "true");
    form.querySelector("[data-upload-status]").textContent = form.dataset.sending || "";
  });
  document.addEventListener("htmx:xhr:progress", function (evt) {
    var form = evt.target;
    if (!form.matches || !form.matches("form[data-upload]") || !evt.detail.lengthComputable) return;
    var progress = bar(form);
    // The request's bytes sent; the answer's own progress events come after the upload is complete.
    if (evt.detail.total > 0 && evt.detail.loaded <= evt.detail.total) {
      progress.value = Math.max(progress.value, Math.round((100 * evt.detail.loaded) / evt.detail.total));
    }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-upload]")) return;
    form.removeAttribute("aria-busy");
    var status = form.querySelector("[data-upload-status]");
    if (evt.detail.successful) {
      bar(form).value = 100;
      status.textContent = form.dataset.done || "";
    } else {
      // e.g. 413 from the body limit, answered before the route: its problem+json is not swapped in.
      status.textContent = form.dataset.refused || "";
    }
  });
})();
