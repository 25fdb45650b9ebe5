/* Trellis first-party tracking snippet.  Served by your Trellis site; include it with
 *   <script async src="https://crm.example.com/integrations/t/<site key>.js"></script>
 * It sets a first-party cookie with an anonymous visitor id (trl_vid, 2 years) on the
 * page's own domain, sends a page view, and offers
 *   trellis.track(type, props)   e.g. trellis.track("add_to_cart", {product: "SKU-1"})
 *   trellis.identify(email, props)
 * Forms marked <form data-trellis-form="Newsletter"> are sent as form_submit with the
 * value of their e-mail field, which ties this visitor's earlier visits to the contact. */
(function (window, document) {
  "use strict";
  var SITE = "__SITE_KEY__";
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : "";
  var ENDPOINT = base + "/integrations/t/collect";
  var YEARS2 = 60 * 60 * 24 * 730;

  function uid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "v" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function visitorId() {
    var id = cookie("trl_vid");
    if (!id) { id = uid(); }
    document.cookie = "trl_vid=" + encodeURIComponent(id) + "; max-age=" + YEARS2 +
      "; path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    return id;
  }
  function sessionId() {
    var now = Date.now(), key = "trl_sid", raw = null;
    try { raw = JSON.parse(window.sessionStorage.getItem(key) || "null"); } catch (e) { raw = null; }
    if (!raw || now - raw.t > 30 * 60 * 1000) { raw = {id: uid(), t: now}; }
    raw.t = now;
    try { window.sessionStorage.setItem(key, JSON.stringify(raw)); } catch (e) { /* private mode */ }
    return raw.id;
  }
  function send(events) {
    var body = JSON.stringify({site: SITE, events: events});
    if (navigator.sendBeacon && navigator.sendBeacon(ENDPOINT, body)) { return; }
    if (window.fetch) {
      window.fetch(ENDPOINT, {method: "POST", body: body, keepalive: true, mode: "cors",
        headers: {"Content-Type": "text/plain"}}).catch(function () { /* offline */ });
    }
  }
  function event(type, props) {
    props = props || {};
    var e = {type: type, visitor_id: visitorId(), session_id: sessionId(),
             url: location.href, title: document.title, referrer: document.referrer || null};
    ["product", "value", "currency", "email", "first_name", "last_name"].forEach(function (k) {
      if (props[k] !== undefined) { e[k] = props[k]; delete props[k]; }
    });
    if (Object.keys(props).length) { e.properties = props; }
    return e;
  }
  var trellis = {
    track: function (type, props) { send([event(type, props)]); },
    identify: function (email, props) {
      props = props || {}; props.email = email; send([event("identify", props)]);
    }
  };
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-trellis-form")) { return; }
    var email = form.querySelector("input[type=email], input[name=email]");
    var props = {form: form.getAttribute("data-trellis-form") || form.id || "form"};
    if (email && email.value) { props.email = email.value; }
    ["first_name", "last_name"].forEach(function (k) {
      var input = form.querySelector("input[name=" + k + "]");
      if (input && input.value) { props[k] = input.value; }
    });
    send([event("form_submit", props)]);
  }, true);
  var queued = window.trellis && window.trellis.q ? window.trellis.q : [];
  window.trellis = trellis;
  queued.forEach(function (call) { trellis[call[0]].apply(trellis, call[1]); });
  trellis.track("page_view");
})(window, document);
