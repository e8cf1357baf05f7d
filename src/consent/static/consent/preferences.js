/* consent: the preferences dialog, a module that consent.js imports when
   the visitor first asks for the preferences, and on the preferences page. */
const d = document;
let opening = false;

// Fetch the preferences (?fragment=1: the section alone) into a modal
// dialog. Escape or the close button closes it; focus returns to `from`.
export const open = async (href, from) => {
  if (opening || d.querySelector(".consent-dialog")) return;
  opening = true;
  try {
    const url = new URL(href, location), dialog = d.createElement("dialog");
    url.searchParams.set("fragment", 1);
    const response = await fetch(url);
    if (!response.ok) throw response;
    dialog.innerHTML = await response.text();
    dialog.className = "consent-dialog";
    dialog.setAttribute("aria-labelledby", "consent-preferences-title");
    // Open it styled: once the stylesheets it links are in.
    const sheets = [...dialog.querySelectorAll("link")].map(
      (link) => new Promise((done) => (link.onload = link.onerror = done)),
    );
    d.body.append(dialog);
    await Promise.all(sheets);
    dialog.addEventListener("close", () => {
      dialog.remove();
      from?.focus();
    });
    dialog.showModal();
  } finally {
    opening = false;
  }
};

// A category switch sets its services; a service switched on sets its
// category (the form sends services="explicit").
d.addEventListener("change", ({ target }) => {
  const category = target.closest(".consent-category");
  if (!category || target.name != "choice") return;
  if (target.hasAttribute("data-consent-category")) {
    for (const service of category.querySelectorAll("[data-consent-service]")) {
      service.checked = target.checked;
    }
  } else if (target.checked) {
    category.querySelector("[data-consent-category]").checked = true;
  }
});
