/* The dashboard page: refresh one widget, arrange widgets (choose, order, reset). */
(function () {
  "use strict";

  function message(text, ok) {
    var box = document.getElementById("dashboard-message");
    box.textContent = text;
    box.className = ok ? "text-success" : "text-danger";
  }

  function refresh(box) {
    var board = document.getElementById("dashboard");
    var url = board.getAttribute("data-widget-url") + encodeURIComponent(box.getAttribute("data-name"))
      + "?refresh=1";
    box.classList.add("tr-loading");
    fetch(url, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.text();
    }).then(function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html.trim();
      var fresh = holder.firstElementChild;
      box.replaceWith(fresh);
      window.TrellisCharts.drawAll(fresh);
    }).catch(function () {
      box.classList.remove("tr-loading");
      box.querySelector(".tr-widget-head").insertAdjacentHTML(
        "afterend", "<p class='text-danger tr-error'>Could not refresh this widget.</p>");
    });
  }

  function chosen() {
    var items = document.querySelectorAll("#dashboard-choices li");
    return Array.prototype.filter.call(items, function (li) {
      return li.querySelector("input").checked;
    }).map(function (li) { return li.getAttribute("data-name"); });
  }

  function send(method, body) {
    var api = document.getElementById("dashboard-arrange").getAttribute("data-api");
    return fetch(api, {method: method, credentials: "same-origin",
                       headers: {"Content-Type": "application/json"},
                       body: body ? JSON.stringify(body) : undefined})
      .then(function (response) {
        return response.json().then(function (json) { return [response.ok, json]; });
      }).then(function (result) {
        if (result[0]) { window.location.reload(); return; }
        var errors = (result[1].message || {}).widgets || ["Could not save."];
        message(errors.join(" "), false);
      });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    if (button.classList.contains("tr-refresh")) {
      refresh(button.closest(".tr-widget"));
    } else if (button.id === "dashboard-customise") {
      var panel = document.getElementById("dashboard-arrange");
      panel.hidden = !panel.hidden;
      button.setAttribute("aria-expanded", String(!panel.hidden));
    } else if (button.classList.contains("tr-up") || button.classList.contains("tr-down")) {
      var li = button.closest("li");
      if (button.classList.contains("tr-up") && li.previousElementSibling) {
        li.parentNode.insertBefore(li, li.previousElementSibling);
      } else if (button.classList.contains("tr-down") && li.nextElementSibling) {
        li.parentNode.insertBefore(li.nextElementSibling, li);
      }
      button.focus();
    } else if (button.id === "dashboard-save") {
      send("PUT", {widgets: chosen()});
    } else if (button.id === "dashboard-reset") {
      send("DELETE");
    }
  });
})();
