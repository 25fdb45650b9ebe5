/* Forms that ask before they act (data-confirm: the question); no inline handlers,
 * which the Content-Security-Policy refuses. */
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();

/* Live progress of an import: poll its status until it has finished, then reload
 * once so the error report and the revert button appear. */
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.getAttribute("data-finished") === "true") { return; }
  var url = box.getAttribute("data-status-url");
  function set(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var bar = document.getElementById("import-bar");
        bar.style.width = s.percent + "%";
        bar.setAttribute("aria-valuenow", s.percent);
        bar.textContent = s.percent + " %";
        set("import-state", s.status);
        set("import-counts", s.processed + " / " + s.total + " rows");
        set("count-created", s.created); set("count-updated", s.updated);
        set("count-unchanged", s.unchanged); set("count-skipped", s.skipped);
        set("count-errors", s.errors);
        if (s.message) { set("import-message", s.message); }
        if (s.finished) { window.location.reload(); } else { window.setTimeout(poll, 400); }
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  poll();
})();
