/* Trellis charts: dashboard widgets and report-builder results drawn with the
 * vendored Chart.js (static/trellis/vendor/chartjs), served by Trellis itself.
 * Every chart has a legend, and every chart with axes has axis titles.
 *
 *   TrellisCharts.draw(canvas, kind, data, label) -> Chart
 * kind: series | bars | pie | funnel (the widget kinds of trellis.dashboard).
 */
(function () {
  "use strict";

  var PALETTE = ["#337ab7", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085",
                 "#f1c40f", "#2c3e50", "#d35400", "#7f8c8d", "#1abc9c", "#e84393"];

  function colour(i, alpha) {
    var hex = PALETTE[i % PALETTE.length];
    if (alpha === undefined) { return hex; }
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function axis(title) {
    return {title: {display: true, text: title || ""}, ticks: {autoSkip: true}};
  }

  function itemsOf(data) {
    return data.bars || data.slices || data.steps || [];
  }

  /* Bars given as one series ({bars: [...]}) become {labels, series}. */
  function asSeries(data, label) {
    if (data.series) { return data; }
    var items = itemsOf(data);
    return {labels: items.map(function (b) { return b.label; }),
            series: [{label: data.unit || label || "Value",
                      values: items.map(function (b) { return b.value; })}],
            displays: items.map(function (b) { return b.display; })};
  }

  function config(kind, data, label) {
    var base = {responsive: true, maintainAspectRatio: false, animation: false,
                plugins: {legend: {display: true, position: "bottom"}}};
    if (kind === "pie") {
      var slices = itemsOf(data);
      return {type: "doughnut", options: base, data: {
        labels: slices.map(function (s) { return s.label; }),
        datasets: [{label: data.unit || label, data: slices.map(function (s) { return s.value; }),
                    backgroundColor: slices.map(function (s, i) { return colour(i); })}]}};
    }
    if (kind === "funnel") {
      var steps = itemsOf(data), first = steps.length ? Number(steps[0].value) || 0 : 0;
      var labels = steps.map(function (s) {
        var share = first ? " (" + Math.round(100 * (Number(s.value) || 0) / first) + " %)" : "";
        return s.label + share;
      });
      base.indexAxis = "y";
      base.scales = {x: axis(data.y_label || data.unit || "Count"),
                     y: axis(data.x_label || "Step")};
      return {type: "bar", options: base, data: {labels: labels, datasets: [{
        label: data.unit || label, data: steps.map(function (s) { return s.value; }),
        backgroundColor: steps.map(function (s, i) { return colour(0, 1 - i * 0.12); })}]}};
    }
    var s = asSeries(data, label);
    var horizontal = kind === "bars" && !data.series;  // a ranking: labels read best sideways
    base.scales = {};
    base.scales[horizontal ? "y" : "x"] = axis(data.x_label || "");
    base.scales[horizontal ? "x" : "y"] = axis(data.y_label || data.unit || "Value");
    base.scales[horizontal ? "x" : "y"].beginAtZero = true;
    if (horizontal) { base.indexAxis = "y"; }
    return {type: kind === "series" ? "line" : "bar", options: base, data: {
      labels: s.labels,
      datasets: s.series.map(function (one, i) {
        return {label: one.label, data: one.values, borderColor: colour(i),
                backgroundColor: kind === "series" ? colour(i, 0.15) : colour(i, 0.8),
                fill: false, tension: 0.2, spanGaps: true};
      })}};
  }

  function draw(canvas, kind, data, label) {
    if (typeof Chart === "undefined") { return null; }  // the fallback table stays
    var old = Chart.getChart(canvas);
    if (old) { old.destroy(); }
    return new Chart(canvas, config(kind, data || {}, label));
  }

  /* Draw every widget box inside root that carries its data as JSON. */
  function drawAll(root) {
    var boxes = (root || document).querySelectorAll(".tr-widget-data");
    Array.prototype.forEach.call(boxes, function (script) {
      var spec = JSON.parse(script.textContent);
      var canvas = script.parentNode.querySelector("canvas");
      if (canvas) {
        draw(canvas, spec.kind, spec.data, spec.label);
        canvas.parentNode.setAttribute("data-drawn", "1");
      }
    });
  }

  window.TrellisCharts = {draw: draw, drawAll: drawAll, config: config};
  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
})();
