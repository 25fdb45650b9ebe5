/* The condition builder shared by marketing segments and automation rules: nested
   AND / OR groups (tick NOT to invert one) of conditions, offered from the condition
   types an API describes (trellis.conditions.describe), read back as the JSON tree.

   var builder = TrellisConditions.create(types, operators);   // from the API
   // the words it shows: the page's <script type="application/json" id="condition-labels">
   // (trellis.conditions.builder_labels, in the user's language), else English
   container.appendChild(builder.element);
   builder.load(tree);      // optional: show an existing tree
   builder.read();          // the tree
*/
window.TrellisConditions = (function () {
  "use strict";
  var NO_VALUE = ["is_empty", "is_not_empty", "is_true", "is_false"];
  var MEASURES = {total: "number", count: "number", days_since_last: "number", last_at: "date"};
  var WITH_OPS = {field: "field", feature: "feature", record: "field"};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function pageLabels() {
    var node = document.getElementById("condition-labels");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  }

  function create(typeList, operators, labels) {
    var TYPES = {};
    (typeList || []).forEach(function (t) { TYPES[t.name] = t; });
    var OPS = operators || {};
    var L = labels || pageLabels();
    var UI = L.ui || {}, OP_LABELS = L.ops || {}, MEASURE_LABELS = L.measures || {};
    var TYPE_LABELS = L.types || {}, CHOICE_LABELS = L.choices || {};
    function ui(key, english) { return UI[key] || english; }

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
      return select("op", (OPS[kind] || []).map(function (o) {
        return {value: o, label: OP_LABELS[o]};
      }), ui("operator", "operator"));
    }
    function choices(type, key) {
      var p = (TYPES[type] && TYPES[type].params[key]) || {};
      var own = CHOICE_LABELS[type] || {};  // by condition type: its choices' labels
      return (p.choices || []).map(function (c) {
        return typeof c === "string" ? {value: c, label: own[c]}
          : {value: c.name, label: own[c.name] || c.label, kind: c.kind};
      });
    }
    function kindOf(sel) {
      var o = sel && sel.options[sel.selectedIndex];
      return (o && o.getAttribute("data-kind")) || "text";
    }

    /* -------- one condition */
    function paramsFor(type, box) {
      box.textContent = "";
      function withOps(sel) {
        var ops = opsSelect(kindOf(sel));
        box.appendChild(sel); box.appendChild(ops); box.appendChild(input("value", "text", ui("value", "value")));
        sel.addEventListener("change", function () {
          var fresh = opsSelect(kindOf(sel));
          box.replaceChild(fresh, box.querySelector("[data-key=op]"));
        });
      }
      if (WITH_OPS[type]) {
        var key = WITH_OPS[type];
        withOps(select(key, choices(type, key), ui(key, key)));
      }
      else if (type === "tag") { box.appendChild(input("tag", "text", ui("tag", "tag"))); }
      else if (type === "activity") {
        box.appendChild(input("activity_type", "text",
                              ui("activity_type", "activity type, e.g. product.viewed")));
        box.appendChild(input("within_days", "number", ui("within_days", "within days")));
        box.appendChild(input("payload.product_id", "number", ui("product_id", "product id")));
      } else if (type === "purchase") {
        withOps(select("measure", Object.keys(MEASURES).map(function (k) {
          return {value: k, label: MEASURE_LABELS[k], kind: MEASURES[k]};
        }), ui("measure", "measure")));
        box.appendChild(input("within_days", "number", ui("within_days", "within days")));
        box.appendChild(input("product_id", "number", ui("product_id", "product id")));
      } else {
        Object.keys((TYPES[type] || {}).params || {}).forEach(function (k) {
          box.appendChild(input(k, "text", k));
        });
      }
    }
    function setValues(box, node) {
      box.querySelectorAll("[data-key]").forEach(function (field) {
        var key = field.getAttribute("data-key");
        var value = key.indexOf("payload.") === 0 ? (node.payload || {})[key.slice(8)] : node[key];
        if (value === undefined || value === null) { return; }
        field.value = Array.isArray(value) ? value.join(", ") : String(value);
        if (field.tagName === "SELECT" && key !== "op") { field.dispatchEvent(new Event("change")); }
      });
      var op = box.querySelector("[data-key=op]");
      if (op && node.op) { op.value = node.op; }
    }
    function condition(node) {
      var names = Object.keys(TYPES);
      var type = select("type", names.map(function (n) {
        return {value: n, label: TYPE_LABELS[n] || TYPES[n].label};
      }), ui("condition_type", "condition type"));
      var box = el("span", {"class": "rule-params"});
      var remove = el("button", {type: "button", "class": "btn btn-link btn-sm rule-remove",
                                 text: ui("remove", "remove")});
      var row = el("div", {"class": "rule-row", "data-node": "condition"}, [type, box, remove]);
      type.value = node && TYPES[node.type] ? node.type
        : names.indexOf("record") >= 0 ? "record" : names.indexOf("tag") >= 0 ? "tag" : names[0];
      paramsFor(type.value, box);
      if (node) { setValues(box, node); }
      type.addEventListener("change", function () { paramsFor(type.value, box); });
      remove.addEventListener("click", function () { row.remove(); });
      return row;
    }

    /* -------- a group */
    function group(isRoot, node) {
      var op = select("group-op", [{value: "and", label: ui("all", "ALL of (AND)")},
                                   {value: "or", label: ui("any", "ANY of (OR)")}],
                      ui("group_operator", "group operator"));
      var not = el("input", {type: "checkbox", "class": "group-not", "aria-label": ui("not", "NOT")});
      var children = el("div", {"class": "group-children"});
      var addRule = el("button", {type: "button", "class": "btn btn-default btn-sm add-condition",
                                  text: ui("add_condition", "+ condition")});
      var addGroup = el("button", {type: "button", "class": "btn btn-default btn-sm add-group",
                                   text: ui("add_group", "+ group")});
      var head = el("div", {"class": "group-head"},
                    [el("label", {}, [not, document.createTextNode(" " + ui("not", "NOT"))]), op, addRule, addGroup]);
      var box = el("div", {"class": "rule-group", "data-node": "group"}, [head, children]);
      if (!isRoot) {
        var remove = el("button", {type: "button", "class": "btn btn-link btn-sm rule-remove",
                                   text: ui("remove_group", "remove group")});
        remove.addEventListener("click", function () { box.remove(); });
        head.appendChild(remove);
      }
      not.addEventListener("change", function () { box.classList.toggle("negated", not.checked); });
      addRule.addEventListener("click", function () { children.appendChild(condition()); });
      addGroup.addEventListener("click", function () { children.appendChild(group(false)); });
      if (node) {
        if (node.not) { not.checked = true; box.classList.add("negated"); node = node.not; }
        var key = node.or ? "or" : "and";
        op.value = key;
        var items = node[key] || [node];
        items.forEach(function (child) {
          children.appendChild(child.and || child.or || child.not ? group(false, child)
                               : condition(child));
        });
      }
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
      var kind = kindOf(row.querySelector("[data-key=field],[data-key=feature],[data-key=measure]"));
      row.querySelectorAll(".rule-params [data-key]").forEach(function (node) {
        var key = node.getAttribute("data-key");
        var raw = node.value.trim();
        if (key === "value") {
          if (NO_VALUE.indexOf(out.op) < 0) { out.value = valueOf(node, kind, out.op); }
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

    var builder = {element: group(true)};
    builder.read = function () { return readGroup(builder.element); };
    builder.isEmpty = function () {
      return !builder.element.querySelector(".group-children [data-node]");
    };
    builder.load = function (tree) {
      var fresh = group(true, tree || null);
      if (builder.element.parentNode) { builder.element.parentNode.replaceChild(fresh, builder.element); }
      builder.element = fresh;
    };
    return builder;
  }

  return {create: create, el: el};
}());
