(() => {
  // Inline (while the banner shows) the script carries the endpoint in an
  // attribute, so its text, and so its CSP hash, stays the same everywhere.
  const d = document, s = d.currentScript,
    api = s.dataset.consentApi || new URL("..", s.src).href.slice(0, -1),
    all = (s) => [...d.querySelectorAll(s)],
    one = (s) => d.querySelector(s);

  const frame = (e) => {
    const f = d.createElement("iframe");
    for (const [k, v] of Object.entries(JSON.parse(e.dataset.consentAttrs))) f.setAttribute(k, v);
    f.src = e.dataset.consentSrc;
    e.replaceWith(f);
  };

  const apply = (state) => {
    const ok = (e) => state.choices[e.dataset.consentKey],
      no = (e) => state.choices[e.dataset.consentKey] === false;
    // What already runs cannot be stopped in place: after a withdrawal, reload.
    if (all('script[data-consent-key]:not([type="text/plain"]),iframe[data-consent-key]').some(no))
      return location.reload();
    state.needs_banner || one("#cookie-consent")?.remove();
    one(".consent-dialog")?.close();
    for (const o of all('script[type="text/plain"][data-consent-key]').filter(ok)) {
      const n = d.createElement("script");
      for (const a of o.attributes) a.name == "type" || n.setAttribute(a.name, a.value);
      o.dataset.consentType && (n.type = o.dataset.consentType);
      n.nonce = o.nonce;
      n.async = o.async;
      o.dataset.consentSrc ? (n.src = o.dataset.consentSrc) : (n.text = o.text);
      o.replaceWith(n);
    }
    all("[data-consent-embed]").filter(ok).map(frame);
    d.dispatchEvent(new CustomEvent("consent:change", { detail: state }));
  };

  const post = (token, body) =>
    fetch(api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Consent-CSRF": token },
      body: JSON.stringify(body),
    }).then((r) => (r.ok ? r.json() : Promise.reject()))
      .then(apply);

  const prefs = () => import(api + "/static/preferences.js"),
    open = (href, from) => prefs().then((m) => m.open(href, from)).catch(() => location.assign(href));

  d.addEventListener("submit", (e) => {
    const f = e.target, b = e.submitter, data = new FormData(f, b), body = Object.fromEntries(data);
    if (f.id == "consent-customize") {
      e.preventDefault();
      open(f.action + "?" + new URLSearchParams(data), b);
    } else if (f.matches("[data-consent-form]") && f.closest("#cookie-consent,dialog,[data-consent-embed]")) {
      e.preventDefault();
      body.choices = data.getAll("choice");
      delete body.choice;
      post(body.csrf_token, body).catch(() => (f.removeAttribute("data-consent-form"), f.requestSubmit(b)));
    }
  });

  d.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-consent-open]"), once = e.target.closest("[data-consent-load-once]");
    if (a && !(e.ctrlKey || e.metaKey || e.shiftKey || one(".consent-preferences"))) {
      e.preventDefault();
      open(a.href, a);
    }
    once && frame(once.closest("[data-consent-embed]"));
  });

  // An inline script runs before the rest of the page is parsed.
  const start = () => {
    all("[data-consent-load-once]").map((b) => (b.hidden = false));
    one(".consent-preferences") && prefs();
    navigator.globalPrivacyControl && !one(".consent-gpc") &&
      fetch(api).then((r) => r.json())
        .then((s) => s.gpc || post(s.csrf_token, { action: "reject_all", method: "gpc_js" }));
  };
  d.readyState == "loading" ? d.addEventListener("DOMContentLoaded", start) : start();
})();
