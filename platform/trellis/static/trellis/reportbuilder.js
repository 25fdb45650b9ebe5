/* The report builder page: pick a model, filters, groups and measures; run the
 * report through /api/v1/report/run; show a table and a chart; export, save,
 * put it on the dashboard.  Everything the server refuses comes back as field
 * errors and is shown next to the form. */
(function () {
  "use strict";

  var root = document.getElementById("report-builder");
  var api = root.getAttribute("data-api");
  var models = {};
  var lastResult = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function select(options, value, label) {
    var s = el("select", {"class": "form-control input-sm", "aria-label": label});
    options.forEach(function (o) {
      var opt = el("option", {value: o[0]}, o[1]);
      if (String(o[0]) === String(value)) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }

  function model() { return models[document.getElementById("rb-model").value]; }
  function field(name) {
    return (model().fields || []).filter(function (f) { return f.name === name; })[0];
  }
  function removeButton() {
    var b = el("button", {type: "button", "class": "btn btn-default btn-xs tr-rb-remove",
                          "aria-label": "Remove"}, "×");
    return b;
  }

  function addFilter(f) {
    f = f || {};
    var fields = model().fields;
    var row = el("div", {"class": "tr-rb-row tr-rb-filter"});
    var name = select(fields.map(function (x) { return [x.name, x.label]; }),
                      f.field || fields[0].name, "Filter field");
    var op = el("select", {"class": "form-control input-sm", "aria-label": "Operator"});
    var value = el("input", {"class": "form-control input-sm", "aria-label": "Value",
                             placeholder: "value"});
    function ops() {
      op.innerHTML = "";
      field(name.value).ops.forEach(function (o) {
        var opt = el("option", {value: o}, o.replace("_", " "));
        if (o === f.op) { opt.selected = true; }
        op.appendChild(opt);
      });
    }
    name.addEventListener("change", function () { f = {}; ops(); });
    ops();
    if (f.value !== undefined && f.value !== null) {
      value.value = Array.isArray(f.value) ? f.value.join(",") : String(f.value);
    }
    row.append(name, op, value, removeButton());
    document.getElementById("rb-filters").appendChild(row);
  }

  function addGroup(g) {
    g = g || {};
    var fields = model().fields.filter(function (x) { return x.group; });
    if (document.querySelectorAll(".tr-rb-group").length >= 2 || !fields.length) { return; }
    var row = el("div", {"class": "tr-rb-row tr-rb-group"});
    var name = select(fields.map(function (x) { return [x.name, x.label]; }),
                      g.field || fields[0].name, "Group field");
    var bucket = el("select", {"class": "form-control input-sm", "aria-label": "Date bucket"});
    function buckets() {
      bucket.innerHTML = "";
      var list = field(name.value).buckets;
      bucket.hidden = !list.length;
      list.forEach(function (b) {
        var opt = el("option", {value: b}, "by " + b);
        if (b === (g.bucket || "month")) { opt.selected = true; }
        bucket.appendChild(opt);
      });
    }
    name.addEventListener("change", function () { g = {}; buckets(); });
    buckets();
    row.append(name, bucket, removeButton());
    document.getElementById("rb-groups").appendChild(row);
  }

  function addMeasure(m) {
    m = m || {op: "count"};
    var row = el("div", {"class": "tr-rb-row tr-rb-measure"});
    var op = select([["count", "count"], ["sum", "sum"], ["avg", "average"], ["min", "min"],
                     ["max", "max"]], m.op, "Measure");
    var name = el("select", {"class": "form-control input-sm", "aria-label": "Measure field"});
    function fields() {
      name.innerHTML = "";
      if (op.value === "count") { name.appendChild(el("option", {value: ""}, "records")); }
      model().fields.forEach(function (x) {
        if (x.measures.indexOf(op.value) >= 0 && (op.value !== "count")) {
          var opt = el("option", {value: x.name}, x.label);
          if (x.name === m.field) { opt.selected = true; }
          name.appendChild(opt);
        }
      });
    }
    op.addEventListener("change", function () { m = {}; fields(); });
    fields();
    row.append(op, name, removeButton());
    document.getElementById("rb-measures").appendChild(row);
  }

  function parseValue(type, opName, text) {
    if (opName === "is_null") { return text.trim().toLowerCase() !== "false"; }
    if (opName === "in") {
      return text.split(",").map(function (s) { s = s.trim(); return type === "integer" ? Number(s) : s; });
    }
    if (type === "integer" && /^-?\d+$/.test(text.trim())) { return Number(text.trim()); }
    if (type === "boolean") { return text.trim().toLowerCase() === "true"; }
    return text;
  }

  function definition() {
    var d = {model: model().name, filters: [], group_by: [], measures: [],
             chart: document.getElementById("rb-chart").value};
    document.querySelectorAll(".tr-rb-filter").forEach(function (row) {
      var s = row.querySelectorAll("select"), name = s[0].value, opName = s[1].value;
      d.filters.push({field: name, op: opName,
                      value: parseValue(field(name).type, opName, row.querySelector("input").value)});
    });
    document.querySelectorAll(".tr-rb-group").forEach(function (row) {
      var s = row.querySelectorAll("select");
      d.group_by.push({field: s[0].value, bucket: s[1].hidden ? null : s[1].value});
    });
    document.querySelectorAll(".tr-rb-measure").forEach(function (row) {
      var s = row.querySelectorAll("select");
      d.measures.push({op: s[0].value, field: s[1].value || null});
    });
    if (!d.measures.length) { d.measures.push({op: "count"}); }
    return d;
  }

  function showErrors(message) {
    var box = document.getElementById("rb-errors");
    box.innerHTML = "";
    function walk(prefix, value) {
      if (Array.isArray(value)) {
        value.forEach(function (m) {
          if (typeof m === "string") { box.appendChild(el("p", {}, (prefix ? prefix + ": " : "") + m)); }
          else { walk(prefix, m); }
        });
      } else if (value && typeof value === "object") {
        Object.keys(value).forEach(function (k) {
          var label = /^\d+$/.test(k) ? "#" + (Number(k) + 1) : k.replace("_", " ");
          walk(prefix ? prefix + " " + label : label, value[k]);
        });
      } else if (value) { box.appendChild(el("p", {}, prefix + ": " + value)); }
    }
    walk("", message);
  }

  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  }

  function cellText(column, value) {
    if (value === null || value === undefined) { return column.role === "group" ? "(none)" : "—"; }
    if (column.labels) { return column.labels[String(value)] || "#" + value; }
    if (column.type === "boolean") { return value ? "Yes" : "No"; }
    if (typeof value === "number") { return value.toLocaleString("en", {maximumFractionDigits: 2}); }
    return String(value);
  }

  function render(result) {
    lastResult = result;
    var table = document.getElementById("rb-result");
    table.innerHTML = "";
    var head = el("tr");
    result.columns.forEach(function (c) { head.appendChild(el("th", {}, c.label)); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var body = el("tbody");
    result.rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (v, i) {
        tr.appendChild(el("td", result.columns[i].role === "measure" ? {"class": "text-right"} : {},
                          cellText(result.columns[i], v)));
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    document.getElementById("rb-status").textContent = result.rows.length + " row(s)" +
      (result.truncated ? ", only the first are shown" : "") + ".";
    var chart = result.chart, box = document.getElementById("rb-chart-box");
    var drawable = ["series", "bars", "pie", "funnel"].indexOf(chart.kind) >= 0 && result.rows.length;
    box.hidden = !drawable;
    if (drawable) { window.TrellisCharts.draw(document.getElementById("rb-canvas"), chart.kind, chart.data, "Report"); }
    document.getElementById("rb-actions").hidden = false;
  }

  function run() {
    document.getElementById("rb-errors").innerHTML = "";
    return post(api + "run", definition()).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) { showErrors(json.message); return null; }
        render(json.result);
        return json.result;
      });
    });
  }

  function download(fmt) {
    post(api + "export?format=" + fmt, definition()).then(function (response) {
      if (!response.ok) { return response.json().then(function (j) { showErrors(j.message); }); }
      return response.blob().then(function (blob) {
        var a = el("a", {href: URL.createObjectURL(blob), download: "report." + fmt});
        document.body.appendChild(a); a.click(); a.remove();
      });
    });
  }

  function save(toDashboard) {
    var id = root.getAttribute("data-report-id");
    var body = {name: document.getElementById("rb-name").value.trim(),
                shared: document.getElementById("rb-shared").checked, definition: definition()};
    var request = fetch(api + (id || ""), {method: id ? "PUT" : "POST", credentials: "same-origin",
                                           headers: {"Content-Type": "application/json"},
                                           body: JSON.stringify(body)});
    return request.then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) { showErrors(json.message); return; }
        var saved = json.result;
        root.setAttribute("data-report-id", saved.id);
        document.getElementById("rb-status").textContent = "Saved “" + saved.name + "”.";
        if (!toDashboard) { return; }
        var layoutApi = root.getAttribute("data-layout-api");
        return fetch(layoutApi, {credentials: "same-origin"}).then(function (r) { return r.json(); })
          .then(function (layout) {
            var names = layout.result.widgets;
            if (names.indexOf(saved.widget) < 0) { names.push(saved.widget); }
            return fetch(layoutApi, {method: "PUT", credentials: "same-origin",
                                     headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify({widgets: names})});
          }).then(function (r) {
            document.getElementById("rb-status").textContent = r.ok
              ? "Saved “" + saved.name + "” and added it to your dashboard."
              : "Saved, but it could not be added to your dashboard.";
          });
      });
    });
  }

  function reset(initial) {
    ["rb-filters", "rb-groups", "rb-measures"].forEach(function (id) {
      document.getElementById(id).innerHTML = "";
    });
    (initial && initial.filters || []).forEach(addFilter);
    (initial && initial.group_by || []).forEach(addGroup);
    ((initial && initial.measures) || [{op: "count"}]).forEach(addMeasure);
    if (initial && initial.chart) { document.getElementById("rb-chart").value = initial.chart; }
  }

  root.addEventListener("click", function (event) {
    var b = event.target.closest("button");
    if (!b) { return; }
    if (b.classList.contains("tr-rb-remove")) { b.closest(".tr-rb-row").remove(); }
    else if (b.id === "rb-add-filter") { addFilter(); }
    else if (b.id === "rb-add-group") { addGroup(); }
    else if (b.id === "rb-add-measure") { addMeasure(); }
    else if (b.id === "rb-run") { run(); }
    else if (b.id === "rb-csv") { download("csv"); }
    else if (b.id === "rb-xlsx") { download("xlsx"); }
    else if (b.id === "rb-save") { save(false); }
    else if (b.id === "rb-to-dashboard") { save(true); }
  });
  document.getElementById("report-form").addEventListener("submit", function (e) {
    e.preventDefault(); run();
  });

  fetch(api + "models", {credentials: "same-origin"}).then(function (r) { return r.json(); })
    .then(function (json) {
      var picker = document.getElementById("rb-model");
      json.result.forEach(function (m) {
        models[m.name] = m;
        picker.appendChild(el("option", {value: m.name}, m.label));
      });
      var initial = JSON.parse(document.getElementById("rb-initial").textContent);
      if (initial && models[initial.model]) { picker.value = initial.model; }
      picker.addEventListener("change", function () { reset(null); });
      reset(initial);
      if (initial) { run(); }
    });
})();
