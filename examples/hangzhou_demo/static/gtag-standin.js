// A local stand-in for Google's gtag.js: it sends nothing anywhere. It reads
// the Consent Mode entries that consent's gcm.js pushed to dataLayer and
// shows the current analytics_storage value in the footer.
(function () {
  "use strict";
  function current() {
    var state = {};
    (window.dataLayer || []).forEach(function (entry) {
      if (entry[0] === "consent") Object.assign(state, entry[2]);
    });
    return state;
  }
  function show() {
    var el = document.querySelector("[data-gcm-status]");
    if (!el) return;
    var state = current();
    el.textContent =
      "Consent Mode (local stand-in): analytics_storage " +
      (state.analytics_storage || "unset") +
      ", ad_storage " +
      (state.ad_storage || "unset") +
      ".";
  }
  show();
  document.addEventListener("consent:change", function () {
    // gcm.js pushes its update on the same event; read after it.
    window.setTimeout(show, 0);
  });
})();
