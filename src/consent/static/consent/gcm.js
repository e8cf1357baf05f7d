/* consent: Google Consent Mode v2 defaults and updates.
   Load it before any Google tag. It reads its data from
   <script type="application/json" id="consent-gcm"> (no inline script, so a
   strict CSP works), defines dataLayer and gtag, sends the defaults, then the
   stored choice, and an update whenever consent.js reports a change. */
(function () {
  "use strict";
  var el = document.getElementById("consent-gcm");
  if (!el) return;
  var data = JSON.parse(el.textContent);
  window.dataLayer = window.dataLayer || [];
  if (typeof window.gtag !== "function") {
    window.gtag = function () { window.dataLayer.push(arguments); };
  }
  window.gtag("consent", "default", data["default"]);
  if (data.update) window.gtag("consent", "update", data.update);
  document.addEventListener("consent:change", function (event) {
    var choices = (event.detail && event.detail.choices) || {};
    var update = {};
    data.types.forEach(function (name) { update[name] = "denied"; });
    data.always.forEach(function (name) { update[name] = "granted"; });
    Object.keys(data.mapping).forEach(function (key) {
      if (choices[key]) {
        data.mapping[key].forEach(function (name) { update[name] = "granted"; });
      }
    });
    window.gtag("consent", "update", update);
  });
})();
