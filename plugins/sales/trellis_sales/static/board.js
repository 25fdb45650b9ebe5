/* The pipeline board: drag a deal card to another stage column.
 *
 * A move is a PUT /api/v1/deal/<id> {"stage_id": ...} with the session
 * cookie, so the server checks it exactly like the edit form (permission,
 * record rule, model rules, stage history).  Moving into a lost stage asks
 * for the reason first.  A refused move puts the card back and shows why;
 * after every move the column figures are read again from the server.
 * Plain JavaScript, no libraries.
 */
(function () {
  "use strict";

  var board = document.getElementById("pipeline-board");
  var owner = document.getElementById("board-owner");
  if (owner && owner.form) {
    owner.addEventListener("change", function () { owner.form.submit(); });
  }
  if (!board) { return; }

  var canWrite = board.getAttribute("data-can-write") === "1";
  var api = board.getAttribute("data-api");
  var figuresUrl = board.getAttribute("data-figures");
  var message = document.getElementById("board-message");
  var dragged = null;
  var t = window.TrellisI18n.labels("board-labels");  // translated by the page

  function columnOf(node) { return node && node.closest ? node.closest(".board-column") : null; }

  function show(kind, text) {
    message.className = "alert alert-" + kind;
    message.textContent = text;
    message.hidden = false;
  }

  function label(field) {
    var text = String(field).replace(/_id$/, "").replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function describe(res) {
    var m = res.data && res.data.message;
    if (res.status === 404) {
      return t("gone", "This deal is not visible to you any more: it may have been deleted or given to someone else.");
    }
    if (res.status === 401) { return t("session", "Your session has ended: please log in again."); }
    if (res.status === 403) { return t("forbidden", "You may not change deals."); }
    if (m && typeof m === "object") {
      return Object.keys(m).map(function (key) {
        var items = [].concat(m[key]).map(function (item) {
          return typeof item === "string" ? item : JSON.stringify(item);
        });
        return label(key) + ": " + items.join(" ");
      }).join(" ");
    }
    if (typeof m === "string" && m) { return m; }
    return t("failed", "The deal could not be moved (error {status}).", {status: res.status});
  }

  function put(id, body) {
    return fetch(api + encodeURIComponent(id), {
      method: "PUT",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return {ok: r.ok, status: r.status, data: data};
      });
    }, function () {
      return {ok: false, status: 0, data: {message: t("unreachable", "The server could not be reached.")}};
    });
  }

  function setFigures(column, figures) {
    column.querySelector(".board-count").textContent = String(figures.count);
    var totals = column.querySelector(".board-totals");
    while (totals.firstChild) { totals.removeChild(totals.firstChild); }
    figures.totals.forEach(function (t) {
      var li = document.createElement("li");
      li.setAttribute("data-currency", t.currency);
      var total = document.createElement("strong");
      total.className = "board-total";
      total.textContent = t.amount + " " + t.currency;
      var weighted = document.createElement("span");
      weighted.className = "text-muted board-weighted";
      var labels = document.getElementById("pipeline-board").dataset;  // translated by the page
      weighted.title = labels.weightedTitle || "Weighted by probability";
      weighted.textContent = (labels.weightedLabel || "weighted {amount} {currency}")
        .replace("{amount}", t.weighted).replace("{currency}", t.currency);
      li.appendChild(total);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(weighted);
      totals.appendChild(li);
    });
    var shown = column.querySelectorAll(".board-card").length;
    var more = figures.count - shown;
    column.querySelector(".board-empty").hidden = figures.count > 0 || shown > 0;
    column.querySelector(".board-more-count").textContent = String(Math.max(more, 0));
    column.querySelector(".board-more").hidden = more <= 0;
  }

  function refreshFigures() {
    return fetch(figuresUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.columns) { return; }
        data.columns.forEach(function (figures) {
          var column = board.querySelector(
            '.board-column[data-stage-id="' + String(figures.stage_id) + '"]');
          if (column) { setFigures(column, figures); }
        });
        board.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next move or a reload shows the figures */ });
  }

  function askLostReason(card, done) {
    var dialog = document.getElementById("board-lost-dialog");
    var input = document.getElementById("board-lost-reason");
    var name = card.querySelector(".board-card-name").textContent;
    if (!dialog || typeof dialog.showModal !== "function") {
      var answer = window.prompt(t("why_lost", "Why was {deal} lost?", {deal: name}), "");
      done(answer === null ? null : answer.trim());
      return;
    }
    dialog.querySelector(".board-lost-deal").textContent = name;
    input.value = "";
    dialog.returnValue = "";
    function onKey(event) {
      if (event.key === "Enter") { event.preventDefault(); dialog.close("ok"); }
    }
    function onClose() {
      dialog.removeEventListener("close", onClose);
      input.removeEventListener("keydown", onKey);
      done(dialog.returnValue === "ok" ? input.value.trim() : null);
    }
    dialog.addEventListener("close", onClose);
    input.addEventListener("keydown", onKey);
    dialog.showModal();
    input.focus();
  }

  function move(card, column) {
    var fromList = card.parentNode;
    var next = card.nextSibling;
    var stageName = column.getAttribute("data-stage-name");
    var dealName = card.querySelector(".board-card-name").textContent;
    var body = {stage_id: parseInt(column.getAttribute("data-stage-id"), 10)};

    function send() {
      var list = column.querySelector(".board-cards");
      list.insertBefore(card, list.firstChild);
      card.classList.add("board-saving");
      board.setAttribute("data-busy", "1");
      return put(card.getAttribute("data-deal-id"), body).then(function (res) {
        card.classList.remove("board-saving");
        if (res.ok) {
          show("success", t("moved", "{deal} moved to {stage}.", {deal: dealName, stage: stageName}));
        } else {
          if (next && next.parentNode === fromList) {
            fromList.insertBefore(card, next);
          } else {
            fromList.appendChild(card);
          }
          show("danger", t("not_moved", "{deal} was not moved.", {deal: dealName}) + " " + describe(res));
        }
        return refreshFigures();
      }).then(function () { board.removeAttribute("data-busy"); });
    }

    if (column.getAttribute("data-lost") === "1") {
      askLostReason(card, function (reason) {
        if (reason === null) { return; }  // cancelled: the card stays where it was
        body.lost_reason = reason;
        send();
      });
    } else {
      send();
    }
  }

  if (!canWrite) { return; }

  board.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest(".board-card") : null;
    if (!card || card.getAttribute("draggable") !== "true") { return; }
    dragged = card;
    card.classList.add("board-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
  });

  board.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("board-dragging"); }
    dragged = null;
    board.querySelectorAll(".board-drop-target").forEach(function (col) {
      col.classList.remove("board-drop-target");
    });
  });

  board.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!dragged || !column || column === columnOf(dragged)) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    column.classList.add("board-drop-target");
  });

  board.addEventListener("dragleave", function (event) {
    var column = columnOf(event.target);
    if (column && !column.contains(event.relatedTarget)) {
      column.classList.remove("board-drop-target");
    }
  });

  board.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    if (!dragged || !column) { return; }
    event.preventDefault();
    column.classList.remove("board-drop-target");
    var card = dragged;
    dragged = null;
    card.classList.remove("board-dragging");
    if (column !== columnOf(card)) { move(card, column); }
  });
}());
