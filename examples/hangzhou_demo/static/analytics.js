// Counts one page view of this site. Only the path is sent; the server
// decides again whether analytics is allowed before it counts anything.
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = (script && script.dataset.endpoint) || "/analytics/hit";
  if (!window.fetch) {
    return;
  }
  window
    .fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: window.location.pathname }),
      credentials: "same-origin",
      keepalive: true,
    })
    .catch(function () {
      // A lost page view is not worth bothering the visitor about.
    });
})();
