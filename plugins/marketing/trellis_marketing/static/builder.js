/* Segment rule builder: the core's condition builder (trellis/conditions.js) on the
   segment REST API — previews the tree and saves it. */
(function () {
  "use strict";
  var root = document.getElementById("segment-builder");
  if (!root) { return; }
  var el = window.TrellisConditions.el;
  var builder;
  var t = window.TrellisI18n.labels("builder-labels");  // translated by the page
  function readGroup() { return builder.read(); }

  /* -------- talking to the API */
  function showErrors(message) {
    var box = document.getElementById("builder-errors");
    if (!message) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = "";
    if (typeof message === "string") { box.textContent = message; return; }
    Object.keys(message).forEach(function (k) {
      var v = message[k];
      box.appendChild(el("div", {text: k + ": " + (Array.isArray(v) ? v.join(" ") : JSON.stringify(v))}));
    });
  }
  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json", "Accept": "application/json"},
                       body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); });
  }
  function preview() {
    var count = document.getElementById("preview-count");
    count.textContent = "…";
    post(root.getAttribute("data-preview-url"), {rules: readGroup(), limit: 10})
      .then(function (res) {
        var table = document.getElementById("preview-rows");
        var body = table.querySelector("tbody");
        body.textContent = "";
        if (res.status !== 200) {
          count.textContent = "";
          table.hidden = true;
          showErrors(res.body.message || t("preview_failed", "The preview failed."));
          return;
        }
        showErrors(null);
        count.textContent = res.body.count === 1
          ? t("contacts_one", "{count} contact", {count: res.body.count})
          : t("contacts_other", "{count} contacts", {count: res.body.count});
        count.setAttribute("data-count", res.body.count);
        res.body.rows.forEach(function (r) {
          body.appendChild(el("tr", {}, [el("td", {text: (r.first_name + " " + r.last_name).trim()}),
                                         el("td", {text: r.email || ""}),
                                         el("td", {text: r.company || ""})]));
        });
        table.hidden = res.body.rows.length === 0;
      });
  }
  function save(event) {
    event.preventDefault();
    var result = document.getElementById("save-result");
    post(root.getAttribute("data-save-url"), {
      name: document.getElementById("segment-name").value,
      kind: document.getElementById("segment-kind").value,
      rules: readGroup()
    }).then(function (res) {
      if (res.status !== 201) { showErrors(res.body.message || t("save_failed", "Saving failed.")); result.textContent = ""; return; }
      showErrors(null);
      result.textContent = t("saved", "Saved (segment {id}).", {id: res.body.id});
      result.setAttribute("data-id", res.body.id);
    });
  }

  fetch(root.getAttribute("data-types-url"), {credentials: "same-origin",
                                              headers: {"Accept": "application/json"}})
    .then(function (r) { return r.json(); })
    .then(function (data) {
      builder = window.TrellisConditions.create(data.types, data.operators);
      document.getElementById("rules-root").appendChild(builder.element);
      builder.element.querySelector(".add-condition").click();
      root.setAttribute("data-ready", "1");
    });
  document.getElementById("preview-button").addEventListener("click", preview);
  document.getElementById("save-form").addEventListener("submit", save);
}());
