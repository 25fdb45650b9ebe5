/* The words a page hands its script, translated on the server: a
   <script type="application/json" id="..."> blob of {key: text}.
   TrellisI18n.labels(id) gives t(key, english, {name: value}): the page's
   translation of key (the English without one), its {name}s filled in. */
(function () {
  "use strict";
  window.TrellisI18n = {
    labels: function (id) {
      var node = document.getElementById(id);
      var labels = node ? JSON.parse(node.textContent) : {};
      return function t(key, english, values) {
        var text = labels[key] || english;
        Object.keys(values || {}).forEach(function (name) {
          text = text.split("{" + name + "}").join(String(values[name]));
        });
        return text;
      };
    }
  };
})();
