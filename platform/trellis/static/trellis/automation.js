/* The automation rule builder: trigger, conditions (the shared condition builder,
   trellis/conditions.js), actions with their parameters; saves, dry-runs and restores
   versions through /api/v1/automation/, so every check is the API's own. */
(function () {
  "use strict";
  var root = document.getElementById("automation-builder");
  if (!root) { return; }
  var api = root.getAttribute("data-api");
  var ruleId = root.getAttribute("data-rule-id");
  var initial = JSON.parse(document.getElementById("rule-initial").textContent || "null");
  var el = window.TrellisConditions.el;
  var builder = null, ACTIONS = [];
  function $(id) { return document.getElementById(id); }

  function call(method, url, body) {
    return fetch(url, {method: method, credentials: "same-origin",
                       headers: {"Content-Type": "application/json", "Accept": "application/json"},
                       body: body === undefined ? undefined : JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); });
  }
  function showErrors(message) {
    var box = $("builder-errors");
    box.textContent = "";
    box.hidden = !message;
    if (!message) { return; }
    if (typeof message === "string") { box.textContent = message; return; }
    Object.keys(message).forEach(function (k) {
      var v = message[k];
      box.appendChild(el("div", {text: k + ": " + (Array.isArray(v) ? v.join(" ") : JSON.stringify(v))}));
    });
  }

  /* -------- trigger */
  function showTrigger() {
    var kind = $("trigger-kind").value;
    root.querySelectorAll("[data-trigger]").forEach(function (box) {
      box.hidden = box.getAttribute("data-trigger") !== kind;
    });
  }
  function scalar(raw) {
    if (raw === "") { return undefined; }
    try { var v = JSON.parse(raw); if (typeof v !== "object" || v === null) { return v; } } catch (e) { /* text */ }
    return raw;
  }
  function readTrigger() {
    var kind = $("trigger-kind").value, t = {kind: kind};
    if (kind === "record") {
      t.on = $("trigger-on").value;
      if ($("trigger-field").value.trim()) { t.field = $("trigger-field").value.trim(); }
      if ($("trigger-to").value.trim()) { t.to = scalar($("trigger-to").value.trim()); }
    } else if (kind === "event") {
      t.event = $("trigger-event").value.trim();
    } else if (kind === "schedule") {
      if ($("trigger-interval").value) { t.interval = Number($("trigger-interval").value); }
      if ($("trigger-cron").value.trim()) { t.cron = $("trigger-cron").value.trim(); }
    } else {
      t.field = $("trigger-date-field").value;
      t.days = $("trigger-days").value === "" ? null : Number($("trigger-days").value);
      t.direction = $("trigger-direction").value;
    }
    return t;
  }
  function loadTrigger(t) {
    t = t || {kind: "record", on: "created"};
    $("trigger-kind").value = t.kind;
    if (t.on) { $("trigger-on").value = t.on; }
    $("trigger-field").value = t.kind === "record" && t.field ? t.field : "";
    $("trigger-to").value = t.to === undefined ? "" : String(t.to);
    $("trigger-event").value = t.event || "";
    $("trigger-interval").value = t.interval || "";
    $("trigger-cron").value = t.cron || "";
    $("trigger-days").value = t.days === undefined ? "" : t.days;
    if (t.direction) { $("trigger-direction").value = t.direction; }
    if (t.kind === "date" && t.field) { $("trigger-date-field").value = t.field; }
    showTrigger();
  }

  /* -------- actions */
  function actionRow(step) {
    var sel = el("select", {"class": "form-control input-sm", "data-key": "action", "aria-label": "action"});
    ACTIONS.forEach(function (a) { sel.appendChild(el("option", {value: a.name, text: a.label + " (" + a.name + ")"})); });
    var params = el("span", {"class": "action-params"});
    var remove = el("button", {type: "button", "class": "btn btn-link btn-sm", text: "remove"});
    var row = el("div", {"class": "action-row", "data-node": "action"}, [sel, params, remove]);
    function fill(values) {
      params.textContent = "";
      var spec = ACTIONS.filter(function (a) { return a.name === sel.value; })[0];
      Object.keys((spec || {}).params || {}).forEach(function (k) {
        var p = spec.params[k];
        var input = el("input", {"class": "form-control input-sm", "data-param": k, "aria-label": k,
                                 placeholder: k + (p.required ? " *" : "") + (p.description ? " — " + p.description : ""),
                                 title: p.description || k});
        var v = (values || {})[k];
        if (v !== undefined && v !== null) { input.value = typeof v === "string" ? v : JSON.stringify(v); }
        params.appendChild(el("label", {"class": "action-param"},
                              [document.createTextNode(k + (p.required ? " *" : "") + " "), input]));
      });
    }
    if (step && step.action) { sel.value = step.action; }
    fill(step && step.params);
    sel.addEventListener("change", function () { fill(); });
    remove.addEventListener("click", function () { row.remove(); });
    return row;
  }
  function readActions() {
    var out = [];
    $("actions-list").querySelectorAll("[data-node=action]").forEach(function (row) {
      var params = {};
      row.querySelectorAll("[data-param]").forEach(function (input) {
        var v = scalar(input.value.trim());
        if (v !== undefined) { params[input.getAttribute("data-param")] = v; }
      });
      out.push({action: row.querySelector("[data-key=action]").value, params: params});
    });
    return out;
  }

  /* -------- model: its conditions, date fields and actions */
  function loadModel(model, rule) {
    return call("GET", api + "catalogue?model=" + encodeURIComponent(model)).then(function (res) {
      var data = res.body.result;
      ACTIONS = data.actions || [];
      builder = window.TrellisConditions.create(data.condition_types, data.operators);
      var box = $("rules-root");
      box.textContent = "";
      box.appendChild(builder.element);
      if (rule && rule.conditions) { builder.load(rule.conditions); }
      var dates = $("trigger-date-field");
      dates.textContent = "";
      (data.date_fields || []).forEach(function (f) { dates.appendChild(el("option", {value: f, text: f})); });
      $("actions-list").textContent = "";
      ((rule && rule.actions) || [{}]).forEach(function (step) { $("actions-list").appendChild(actionRow(step)); });
      if (rule) { loadTrigger(rule.trigger); } else { showTrigger(); }
    });
  }

  function definition() {
    return {name: $("rule-name").value, description: $("rule-description").value || null,
            model: $("rule-model").value, enabled: $("rule-enabled").checked,
            trigger: readTrigger(), conditions: builder.isEmpty() ? null : builder.read(),
            actions: readActions()};
  }
  function save(event) {
    event.preventDefault();
    var url = ruleId ? api + "rules/" + ruleId : api + "rules";
    call(ruleId ? "PUT" : "POST", url, definition()).then(function (res) {
      if (res.status !== 200 && res.status !== 201) { showErrors(res.body.message || "Saving failed."); return; }
      showErrors(null);
      if (!ruleId) { window.location = window.location.pathname.replace(/\/$/, "") + "/" + res.body.result.id; return; }
      $("save-result").textContent = "Saved (version " + res.body.result.version + ").";
    });
  }
  function dryRun() {
    var raw = $("dry-ids").value.trim();
    var ids = raw ? raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : null;
    var url = api + "dry_run", body = {rule: definition(), record_ids: ids};
    call("POST", url, body).then(function (res) {
      var table = $("dry-records"), list = $("dry-actions"), tbody = table.querySelector("tbody");
      tbody.textContent = ""; list.textContent = "";
      if (res.status !== 200) { table.hidden = true; showErrors(res.body.message || "The dry run failed."); return; }
      showErrors(null);
      res.body.result.records.forEach(function (r) {
        tbody.appendChild(el("tr", {"data-matches": r.matches ? "1" : "0"}, [
          el("td", {text: String(r.id)}), el("td", {text: r.label}), el("td", {text: r.matches ? "yes" : "no"})]));
      });
      table.hidden = false;
      res.body.result.actions.forEach(function (o) {
        list.appendChild(el("li", {text: o.action + ": " + (o.ok ? JSON.stringify(o.result) : o.error)}));
      });
      if (!res.body.result.actions.length) { list.appendChild(el("li", {text: "Nothing matches: no action would run."})); }
    });
  }

  call("GET", api + "catalogue").then(function (res) {
    var models = $("rule-model");
    res.body.result.models.forEach(function (m) { models.appendChild(el("option", {value: m.name, text: m.label})); });
    if (initial) {
      models.value = initial.model;
      $("rule-name").value = initial.name;
      $("rule-description").value = initial.description || "";
      $("rule-enabled").checked = !!initial.enabled;
    } else if (res.body.result.models.some(function (m) { return m.name === "contact"; })) {
      models.value = "contact";
    }
    if (!initial) { loadTrigger(null); }
    return loadModel(models.value, initial);
  }).then(function () { root.setAttribute("data-ready", "1"); });

  $("rule-model").addEventListener("change", function () { loadModel($("rule-model").value, null); });
  $("trigger-kind").addEventListener("change", showTrigger);
  $("add-action").addEventListener("click", function () { $("actions-list").appendChild(actionRow()); });
  $("rule-form").addEventListener("submit", save);
  $("dry-run").addEventListener("click", dryRun);
  root.querySelectorAll(".restore-version").forEach(function (button) {
    button.addEventListener("click", function () {
      call("POST", api + "rules/" + ruleId + "/restore", {version: Number(button.getAttribute("data-version"))})
        .then(function (res) {
          if (res.status !== 200) { showErrors(res.body.message || "Restoring failed."); return; }
          window.location.reload();
        });
    });
  });
}());
