/* Segment rule builder: builds a condition tree (trellis.conditions) from nested
   AND/OR groups, previews it and saves it through the segment REST API. */
(function () {
  "use strict";
  var root = document.getElementById("segment-builder");
  if (!root) { return; }
  var TYPES = {}, OPS = {};
  var NO_VALUE = ["is_empty", "is_not_empty"];
  var MEASURES = {total: "number", count: "number", days_since_last: "number", last_at: "date"};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function select(key, options, label) {
    var s = el("select", {"class": "form-control input-sm", "data-key": key, "aria-label": label || key});
    options.forEach(function (o) {
      var opt = el("option", {value: o.value, text: o.label || o.value});
      if (o.kind) { opt.setAttribute("data-kind", o.kind); }
      s.appendChild(opt);
    });
    return s;
  }
  function input(key, type, placeholder) {
    return el("input", {"class": "form-control input-sm", "data-key": key, type: type || "text",
                        placeholder: placeholder || key, "aria-label": placeholder || key});
  }
  function opsSelect(kind) {
    return select("op", (OPS[kind] || []).map(function (o) { return {value: o}; }), "operator");
  }
  function choices(type, key) {
    var p = (TYPES[type] && TYPES[type].params[key]) || {};
    return (p.choices || []).map(function (c) {
      return typeof c === "string" ? {value: c} : {value: c.name, label: c.label, kind: c.kind};
    });
  }

  /* -------- one condition */
  function paramsFor(type, box) {
    box.textContent = "";
    function kindOf(sel) {
      var o = sel.options[sel.selectedIndex];
      return (o && o.getAttribute("data-kind")) || "text";
    }
    function withOps(sel) {
      var ops = opsSelect(kindOf(sel));
      box.appendChild(sel); box.appendChild(ops); box.appendChild(input("value", "text", "value"));
      sel.addEventListener("change", function () {
        var fresh = opsSelect(kindOf(sel));
        box.replaceChild(fresh, box.querySelector("[data-key=op]"));
      });
    }
    if (type === "field") { withOps(select("field", choices("field", "field"), "field")); }
    else if (type === "feature") { withOps(select("feature", choices("feature", "feature"), "feature")); }
    else if (type === "tag") { box.appendChild(input("tag", "text", "tag")); }
    else if (type === "activity") {
      box.appendChild(input("activity_type", "text", "activity type, e.g. product.viewed"));
      box.appendChild(input("within_days", "number", "within days"));
      box.appendChild(input("payload.product_id", "number", "product id"));
    } else if (type === "purchase") {
      var m = select("measure", Object.keys(MEASURES).map(function (k) {
        return {value: k, kind: MEASURES[k]};
      }), "measure");
      withOps(m);
      box.appendChild(input("within_days", "number", "within days"));
      box.appendChild(input("product_id", "number", "product id"));
    } else {
      Object.keys((TYPES[type] || {}).params || {}).forEach(function (k) {
        box.appendChild(input(k, "text", k));
      });
    }
  }
  function condition() {
    var names = Object.keys(TYPES);
    var type = select("type", names.map(function (n) {
      return {value: n, label: TYPES[n].label};
    }), "condition type");
    var box = el("span", {"class": "rule-params"});
    var remove = el("button", {type: "button", "class": "btn btn-link btn-sm rule-remove",
                               text: "remove"});
    var row = el("div", {"class": "rule-row", "data-node": "condition"}, [type, box, remove]);
    type.value = names.indexOf("tag") >= 0 ? "tag" : names[0];
    paramsFor(type.value, box);
    type.addEventListener("change", function () { paramsFor(type.value, box); });
    remove.addEventListener("click", function () { row.remove(); });
    return row;
  }

  /* -------- a group */
  function group(isRoot) {
    var op = select("group-op", [{value: "and", label: "ALL of (AND)"},
                                 {value: "or", label: "ANY of (OR)"}], "group operator");
    var not = el("input", {type: "checkbox", "class": "group-not", "aria-label": "NOT"});
    var children = el("div", {"class": "group-children"});
    var addRule = el("button", {type: "button", "class": "btn btn-default btn-sm add-condition",
                                text: "+ condition"});
    var addGroup = el("button", {type: "button", "class": "btn btn-default btn-sm add-group",
                                 text: "+ group"});
    var head = el("div", {"class": "group-head"},
                  [el("label", {}, [not, document.createTextNode(" NOT")]), op, addRule, addGroup]);
    var box = el("div", {"class": "rule-group", "data-node": "group"}, [head, children]);
    if (!isRoot) {
      var remove = el("button", {type: "button", "class": "btn btn-link btn-sm rule-remove",
                                 text: "remove group"});
      remove.addEventListener("click", function () { box.remove(); });
      head.appendChild(remove);
    }
    not.addEventListener("change", function () { box.classList.toggle("negated", not.checked); });
    addRule.addEventListener("click", function () { children.appendChild(condition()); });
    addGroup.addEventListener("click", function () { children.appendChild(group(false)); });
    return box;
  }

  /* -------- to JSON */
  function valueOf(node, kind, op) {
    var raw = node.value.trim();
    if (op === "in") { return raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
    if (kind === "number" && raw !== "" && !isNaN(Number(raw))) { return Number(raw); }
    if (/^(within_days|older_than_days|within_next_days)$/.test(op) && raw !== "" && !isNaN(Number(raw))) {
      return Number(raw);
    }
    return raw;
  }
  function readCondition(row) {
    var type = row.querySelector("[data-key=type]").value;
    var out = {type: type};
    var kindSel = row.querySelector("[data-key=field],[data-key=feature],[data-key=measure]");
    var kind = "text";
    if (kindSel) {
      var o = kindSel.options[kindSel.selectedIndex];
      kind = (o && o.getAttribute("data-kind")) || "text";
    }
    row.querySelectorAll(".rule-params [data-key]").forEach(function (node) {
      var key = node.getAttribute("data-key");
      var raw = node.value.trim();
      if (key === "value") {
        var op = out.op;
        if (NO_VALUE.indexOf(op) < 0) { out.value = valueOf(node, kind, op); }
      } else if (node.type === "number") {
        if (raw === "") { return; }
        if (key.indexOf("payload.") === 0) {
          out.payload = out.payload || {};
          out.payload[key.slice(8)] = Number(raw);
        } else { out[key] = Number(raw); }
      } else if (raw !== "") { out[key] = raw; }
    });
    return out;
  }
  function readGroup(box) {
    var op = box.querySelector(":scope > .group-head [data-key=group-op]").value;
    var not = box.querySelector(":scope > .group-head .group-not").checked;
    var items = [];
    box.querySelectorAll(":scope > .group-children > [data-node]").forEach(function (child) {
      items.push(child.getAttribute("data-node") === "group" ? readGroup(child) : readCondition(child));
    });
    var node = {};
    node[op] = items;
    return not ? {not: node} : node;
  }

  /* -------- talking to the API */
  var rootGroup;
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
    post(root.getAttribute("data-preview-url"), {rules: readGroup(rootGroup), limit: 10})
      .then(function (res) {
        var table = document.getElementById("preview-rows");
        var body = table.querySelector("tbody");
        body.textContent = "";
        if (res.status !== 200) {
          count.textContent = "";
          table.hidden = true;
          showErrors(res.body.message || "The preview failed.");
          return;
        }
        showErrors(null);
        count.textContent = res.body.count + (res.body.count === 1 ? " contact" : " contacts");
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
      rules: readGroup(rootGroup)
    }).then(function (res) {
      if (res.status !== 201) { showErrors(res.body.message || "Saving failed."); result.textContent = ""; return; }
      showErrors(null);
      result.textContent = "Saved (segment " + res.body.id + ").";
      result.setAttribute("data-id", res.body.id);
    });
  }

  fetch(root.getAttribute("data-types-url"), {credentials: "same-origin",
                                              headers: {"Accept": "application/json"}})
    .then(function (r) { return r.json(); })
    .then(function (data) {
      data.types.forEach(function (t) { TYPES[t.name] = t; });
      OPS = data.operators;
      rootGroup = group(true);
      document.getElementById("rules-root").appendChild(rootGroup);
      rootGroup.querySelector(".add-condition").click();
      root.setAttribute("data-ready", "1");
    });
  document.getElementById("preview-button").addEventListener("click", preview);
  document.getElementById("save-form").addEventListener("submit", save);
}());
