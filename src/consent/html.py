"""The banner and the markup around it, rendered the same in every adapter.

:class:`Page` holds what one response renders: the banner, the ``<head>``
tags, the gated scripts and embeds, the "Cookie settings" link and Google
Consent Mode, and what to put into an HTML body the app rendered without
the banner. Templates take every URL from their context (:class:`Urls`); an
adapter provides the URLs, the template renderer and the CSP nonce.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import functools
import logging
import typing as t

import jinja2
from jinja2.runtime import Context
from jinja2.utils import htmlsafe_json_dumps
from jinja2.utils import missing
from markupsafe import Markup
from markupsafe import escape

from .assets import asset_version
from .assets import banner_css
from .assets import banner_script
from .declaration import declaration
from .exceptions import ChoiceError
from .exceptions import ForbiddenChoiceError
from .exceptions import UnknownCategoryError
from .gcm import ALWAYS_GRANTED
from .gcm import CONSENT_TYPES
from .gcm import consent_types
from .gcm import default_command

if t.TYPE_CHECKING:
    from .visitor import Visitor

logger = logging.getLogger(__name__)

#: Renders a template of the library (``consent/banner.html``...) with a
#: context; the adapter's template environment, so apps can override them.
Render = cabc.Callable[[str, dict[str, t.Any]], str]

#: Attributes of a gated script that the library sets and a template cannot
#: override: they decide whether the script runs.
RESERVED_SCRIPT_ATTRIBUTES = frozenset(
    {
        "type",
        "src",
        "data-consent-key",
        "data-consent-src",
        "data-consent-type",
        "nonce",
    }
)

#: Holds the first paint (in browsers that know ``rel="expect"``) until the
#: banner's last element, the Customize form, is parsed; without it, parsing
#: ends the wait.
_EXPECT_BANNER = Markup(
    '<link rel="expect" href="#consent-customize" blocking="render">'
)


@dataclasses.dataclass(frozen=True)
class Urls:
    """Where the library's endpoints and files are, as the adapter routes
    them (including any prefix the app is mounted under).

    :param update: ``POST`` here to make a choice.
    :param preferences: The preferences page.
    :param declaration: The cookie declaration.
    :param static: The folder of the library's static files, without a
        trailing slash.
    """

    update: str
    preferences: str
    declaration: str
    static: str

    def asset(self, filename: str) -> str:
        """The versioned URL of a static file, cached by browsers for a year."""
        return f"{self.static}/{filename}?v={asset_version(filename)}"


def attributes(attrs: cabc.Mapping[str, t.Any]) -> Markup:
    """Render HTML attributes, escaped; ``True`` gives a bare attribute and
    ``None`` or ``False`` none; ``data_x`` is written ``data-x``."""
    parts = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            parts.append(Markup(" {}").format(name))
        else:
            parts.append(Markup(' {}="{}"').format(name, value))
    return Markup("").join(parts)


class Page:
    """The consent markup of one response.

    :param visitor: The visitor the response is for.
    :param urls: Where the library's endpoints and files are.
    :param render: Renders the library's templates.
    :param here: The current page, where the "Cookie settings" link and
        the banner lead back to.
    :param is_own_page: True on the library's own pages (preferences,
        declaration), whose banner leads back nowhere in particular.
    :param nonce: Returns the request's CSP nonce, or ``None``.
    """

    def __init__(
        self,
        visitor: Visitor,
        urls: Urls,
        render: Render,
        *,
        here: str | None,
        is_own_page: bool = False,
        nonce: cabc.Callable[[], str | None] = lambda: None,
    ) -> None:
        self.visitor = visitor
        self.urls = urls
        self.render = render
        self.here = here
        self.is_own_page = is_own_page
        self._nonce = nonce

    @functools.cached_property
    def nonce(self) -> str | None:
        """The request's CSP nonce, if the app uses one."""
        return self._nonce()

    def _nonce_attribute(self) -> str:
        return f' nonce="{escape(self.nonce)}"' if self.nonce else ""

    # The banner and its assets.

    def asset_tags(self, *, css: bool = True, inline: bool = False) -> Markup:
        """``consent.js`` (deferred, from its cached file), with the banner's
        styles before it (a link to the cached ``consent.css``); ``inline``
        puts both in the page instead, for a first view that waits for no
        request (``CONSENT_INLINE_ASSETS``)."""
        nonce = self._nonce_attribute()
        if inline:
            api = escape(self.urls.update)
            script = (
                f'<script data-consent-api="{api}"{nonce}>{banner_script()}</script>'
            )
            return Markup(
                f"<style{nonce}>{banner_css()}</style>{script}" if css else script
            )
        src = escape(self.urls.asset("consent.js"))
        tags = f'<script src="{src}" defer{nonce}></script>'
        if css:
            sheet = escape(self.urls.asset("consent.css"))
            tags = f'<link rel="stylesheet" href="{sheet}">{tags}'
        return Markup(tags)

    def head(self) -> Markup:
        """The ``<head>`` part: the banner's styles and the deferred
        ``consent.js``.

        Optional: without it, the banner carries its own tags. While the
        banner shows, its CSS and script are in the page (``CONSENT_INLINE_ASSETS``): a
        first visit then waits for no stylesheet request. It also asks the
        browser (``<link rel="expect" blocking="render">``) to hold the first
        paint until the banner's last element is parsed: a slow parse then
        never paints half a banner that grows into place.
        """
        visitor = self.visitor
        visitor.head_rendered = True
        if not visitor.shows_banner:
            return self.asset_tags(inline=False)
        inline = visitor.site.settings.inline_assets
        return _EXPECT_BANNER + self.asset_tags(inline=inline)

    def context(self) -> dict[str, t.Any]:
        """What the banner and the library's pages render with."""
        visitor = self.visitor
        policy = visitor.policy
        return {
            "t": visitor.translator,
            "policy": policy,
            "purposes": ", ".join(c.title for c in policy.optional_categories),
            "csrf_token": visitor.csrf_token(),
            "next": None if self.is_own_page else self.here,
            "gpc_honored": visitor.gpc_honored,
            "layout": visitor.layout,
            "theme": visitor.site.settings.theme,
            "mode": visitor.mode,
            # Only a page without consent_head() needs the tags in the banner.
            "asset_tags": (
                Markup("")
                if visitor.head_rendered
                else self.asset_tags(inline=visitor.site.settings.inline_assets)
            ),
            "update_url": self.urls.update,
            "preferences_url": self.urls.preferences,
            "declaration_url": self.urls.declaration,
            "css_url": self.urls.asset("consent.css"),
            "preferences_css_url": self.urls.asset("preferences.css"),
            "consent_head": self.head,
            "consent_settings_link": self.settings_link,
        }

    def preferences_context(self, next_path: str) -> dict[str, t.Any]:
        """What the preferences page renders with (no banner on it).

        :param next_path: Where saving leads back to: a path on this site.
        """
        visitor = self.visitor
        visitor.banner_suppressed = True
        context = self.context()
        context.update(
            next=next_path,
            choices=visitor.choices(),
            state=visitor.state if visitor.has_chosen else None,
            categories=declaration(visitor.site, visitor.language),
        )
        return context

    def declaration_context(self) -> dict[str, t.Any]:
        """What the cookie declaration page renders with."""
        context = self.context()
        context["categories"] = declaration(self.visitor.site, self.visitor.language)
        return context

    def error_context(self, error: ChoiceError, back: str) -> dict[str, t.Any]:
        """What the page that answers a refused form post renders with: why,
        and a fresh form when the old one could not be accepted (expired or
        unchecked token), else the way ``back``."""
        context = self.preferences_context(back)
        context.update(
            message=self.visitor.translator(
                error.message_key, seconds=getattr(error, "retry_after", "")
            ),
            description=error.description,
            back=back,
            offer_form=isinstance(error, ForbiddenChoiceError),
        )
        return context

    def banner(self) -> Markup:
        """The banner when the visitor must choose, else nothing (and never
        twice in one response)."""
        visitor = self.visitor
        if visitor.banner_rendered or not visitor.shows_banner:
            return Markup("")
        visitor.banner_rendered = True
        return Markup(self.render("consent/banner.html", self.context()))

    def settings_link(self, label: str | None = None) -> Markup:
        """A link to the preferences page, for the footer of every page.

        Withdrawing must be as easy as consenting, and possible at any time
        (GDPR Art. 7(3)): this link is how, even without JavaScript.

        :param label: The link text; "Cookie settings" in the visitor's
            language by default.
        """
        href = self.urls.preferences
        if self.here:
            from urllib.parse import urlencode

            href = f"{href}?{urlencode({'next': self.here}, safe='/:')}"
        text = label if label is not None else self.visitor.translator("settings_link")
        return Markup(
            '<a class="consent-settings-link" href="{}" data-consent-open>{}</a>'
        ).format(href, text)

    # Gated markup.

    def _allows(self, key: str) -> bool:
        # Visitor.allows raises for an undeclared key when strict (debug and
        # testing) and refuses it, logging an error, in production.
        return self.visitor.allows(key)

    def script(
        self,
        key: str,
        src: str | None = None,
        *,
        body: str | None = None,
        **attrs: t.Any,
    ) -> Markup:
        """A ``<script>`` that runs only when ``key`` is allowed.

        Allowed: a live script carrying the request's CSP nonce. Not allowed:
        an inert ``type="text/plain"`` tag with ``data-consent-key`` (and
        ``data-consent-src``) that ``consent.js`` activates without a reload
        once the visitor allows ``key``. ``type="module"`` is kept in
        ``data-consent-type`` and restored on activation. The attributes that
        decide whether it runs cannot be overridden by ``attrs``.

        :param key: A category or service key.
        :param src: The script URL, for an external script.
        :param body: The code of an inline script (trusted template content).
        :param attrs: More attributes (``defer=True``, ``type="module"``,
            ``data_domain="..."``).
        """
        if body is not None and "</script" in body.lower():
            raise ValueError("An inline script body cannot contain '</script'.")
        extra = {k: v for k, v in attrs.items() if k.rstrip("_").lower() != "type"}
        reserved = {
            k.rstrip("_").replace("_", "-").lower() for k in extra
        } & RESERVED_SCRIPT_ATTRIBUTES
        if reserved:
            raise ValueError(
                f"consent_script() sets {', '.join(sorted(reserved))} itself;"
                " pass src as the second argument and the key as the first."
            )
        kind = attrs.get("type") or attrs.get("type_")
        if kind is not None and str(kind).lower() not in ("module", "text/javascript"):
            raise ValueError(
                f"consent_script() runs JavaScript; type={kind!r} is not a script"
                " type (use 'module' or leave it out)."
            )
        base: dict[str, t.Any]
        if self._allows(key):
            base = {"src": src, "type": kind, "data-consent-key": key}
        else:
            base = {
                "type": "text/plain",
                "data-consent-key": key,
                "data-consent-src": src,
                "data-consent-type": kind,
            }
        base["nonce"] = self.nonce
        return Markup("<script{}{}>{}</script>").format(
            attributes(base), attributes(extra), Markup(body or "")
        )

    def embed(self, key: str, src: str, *, title: str, **attrs: t.Any) -> Markup:
        """An ``<iframe>`` that loads only when ``key`` is allowed; otherwise
        a placeholder naming the provider and its cookies, with **Load once**
        and **Always allow**.

        :param key: A service (or category) key.
        :param src: The embed URL.
        :param title: The iframe's accessible title.
        :param attrs: More iframe attributes (``width``, ``height``,
            ``allow``).
        """
        attrs.setdefault("loading", "lazy")
        if self._allows(key):
            return Markup("<iframe{}></iframe>").format(
                attributes(
                    {"src": src, "title": title, "data-consent-key": key, **attrs}
                )
            )
        visitor = self.visitor
        policy = visitor.policy
        try:
            category = policy.category_of(key)
        except UnknownCategoryError:
            # Fail closed: an undeclared key (logged by allows) stays inert.
            return Markup('<div class="consent-embed" data-consent-embed></div>')
        service = next((s for s in category.services if s.key == key), None)
        cookies = service.cookies if service else category.all_cookies()
        context = self.context()
        context.update(
            key=key,
            src=src,
            title=title,
            attributes={
                "title": title,
                **{k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()},
            },
            service_title=service.title if service else category.title,
            provider=(service.provider if service else "") or category.title,
            cookie_names=", ".join(c.label for c in cookies) or "-",
            granted=[k for k in policy.choice_keys if visitor.allows(k)],
        )
        return Markup(self.render("consent/embed.html", context))

    def requires_context(self, key: str) -> dict[str, t.Any]:
        """What the page of a view that needs ``key`` renders with."""
        policy = self.visitor.policy
        category = policy.category_of(key)
        service = next((s for s in category.services if s.key == key), None)
        context = self.context()
        context.update(
            key=key,
            purpose=service.title if service else category.title,
            granted=[k for k in policy.choice_keys if self.visitor.allows(k)],
        )
        return context

    # Google Consent Mode.

    def mode_head(self, region: cabc.Sequence[str] | None = None) -> Markup:
        """Google Consent Mode v2, for ``<head>`` before any Google tag.

        The default (everything denied that the visitor has not allowed,
        ``wait_for_update``, optional ``region``) and, when the visitor has
        chosen, the ``update``, as data for ``gcm.js``, a same-origin script:
        no inline script, so ``script-src 'self'`` is enough.

        :param region: ISO 3166 codes the default applies to.
        """
        visitor = self.visitor
        settings = visitor.site.settings
        mapping = settings.gcm_mapping
        update: dict[str, str] | None = consent_types(mapping, visitor.allows)
        # The update is sent after a choice, and whenever something already
        # runs without one (opt-out mode, UK exemptions).
        if visitor.needs_banner and update == consent_types(mapping, lambda k: False):
            update = None
        data = {
            "default": default_command(
                wait_for_update=settings.gcm_wait_ms, region=region
            ),
            "update": update,
            "mapping": mapping,
            "types": list(CONSENT_TYPES),
            "always": list(ALWAYS_GRANTED),
        }
        return Markup(
            '<script type="application/json" id="consent-gcm">{}</script>'
            '<script src="{}"{}></script>'
        ).format(
            htmlsafe_json_dumps(data),
            self.urls.asset("gcm.js"),
            Markup(self._nonce_attribute()),
        )

    # Putting the banner into a page the app rendered.

    def injection(self) -> tuple[bytes, bool] | None:
        """What to put into this response's HTML, and where: ``(markup,
        True)`` right after ``<body>`` (the banner), ``(markup, False)``
        before ``</body>`` (``consent.js`` alone, for the "Cookie settings"
        links), or ``None`` when the page has what it needs."""
        visitor = self.visitor
        if visitor.banner_rendered:
            return None
        if visitor.shows_banner:
            # First in <body>, whatever the layout (CSS places the fixed
            # ones): keyboard and screen-reader users meet the choice before
            # the page (WCAG 2.4.3), and the inline layout is in the flow
            # from first paint.
            return str(self.banner()).encode(), True
        if visitor.head_rendered:
            return None  # consent_head() already loads consent.js
        return str(self.asset_tags(css=False)).encode(), False


class TemplateHelpers:
    """The template helpers, each rendering the current response's consent
    markup: adapters make one with their way of finding the current
    :class:`Page`, and give its :meth:`globals` to their templates.

    :param page: Returns the page of the request being served.
    """

    def __init__(self, page: cabc.Callable[[], Page]) -> None:
        self._page = page

    def consent_banner(self) -> Markup:
        """The banner when the visitor must choose, else nothing.

        Renders ``consent/banner.html``; an app overrides it by providing a
        template at the same path.
        """
        return self._page().banner()

    def consent_head(self) -> Markup:
        """The ``<head>`` part: the banner's styles and the deferred
        ``consent.js``. Optional: without it, the banner carries its own
        tags."""
        return self._page().head()

    def consent_settings_link(self, label: str | None = None) -> Markup:
        """The "Cookie settings" link that reopens the choice at any time.

        :param label: The link text; "Cookie settings" in the visitor's
            language by default.
        """
        return self._page().settings_link(label)

    def consent_script(
        self,
        key: str,
        src: str | None = None,
        *,
        body: str | None = None,
        **attrs: t.Any,
    ) -> Markup:
        """A ``<script>`` that runs only when ``key`` is allowed (inert until
        then, activated in place by ``consent.js``); see :meth:`Page.script`."""
        return self._page().script(key, src, body=body, **attrs)

    def consent_embed(
        self, key: str, src: str, *, title: str, **attrs: t.Any
    ) -> Markup:
        """An ``<iframe>`` when ``key`` is allowed, else a placeholder with
        **Load once** and **Always allow**; see :meth:`Page.embed`."""
        return self._page().embed(key, src, title=title, **attrs)

    def consent_mode_head(self, region: cabc.Sequence[str] | None = None) -> Markup:
        """Google Consent Mode v2 default and update, before any Google tag.

        :param region: ISO 3166 codes the default applies to.
        """
        return self._page().mode_head(region)

    def install(self, env: jinja2.Environment, **names: t.Any) -> None:
        """Make the helpers, and ``names`` (such as ``consent``), known to
        every template of ``env``; see :func:`add_template_names`."""
        add_template_names(env, {**self.globals(), **names})

    def globals(self) -> dict[str, cabc.Callable[..., Markup]]:
        """Every helper by its template name."""
        return {
            name: getattr(self, name)
            for name in (
                "consent_banner",
                "consent_head",
                "consent_settings_link",
                "consent_script",
                "consent_embed",
                "consent_mode_head",
            )
        }


def add_template_names(
    env: jinja2.Environment, names: cabc.Mapping[str, t.Any]
) -> None:
    """Make ``names`` known to every template of ``env``, as globals are,
    without Jinja's cost for globals.

    Jinja copies every global into the context of every template it renders,
    used or not (about half a microsecond per name and render); these names
    are looked up when a template uses one. The environment's
    ``context_class`` becomes a subclass of the one it had whose
    :meth:`~jinja2.runtime.Context.resolve_or_missing` (the lookup Jinja
    documents for extending) falls back to ``names``. A context variable or
    a global of the same name comes first. Installing again adds to the
    names already there.

    :param env: The template environment.
    :param names: Values by the name templates use.
    """
    base = env.context_class
    known: dict[str, t.Any] | None = getattr(base, "_consent_names", None)
    if known is not None:
        known.update(names)
        return
    found = dict(names)
    resolve = base.resolve_or_missing
    contains = base.__contains__

    if resolve is Context.resolve_or_missing:
        # Jinja's own lookup, inlined: every name a template uses comes
        # through here, the page's own variables most of all.
        def resolve_or_missing(self: Context, key: str) -> t.Any:
            if key in self.vars:
                return self.vars[key]
            if key in self.parent:
                return self.parent[key]
            return found.get(key, missing)

    else:

        def resolve_or_missing(self: Context, key: str) -> t.Any:
            value = resolve(self, key)
            return found.get(key, missing) if value is missing else value

    def __contains__(self: Context, name: str) -> bool:
        return contains(self, name) or name in found

    env.context_class = type(
        f"Consent{base.__name__}",
        (base,),
        {
            "__doc__": base.__doc__,
            "resolve_or_missing": resolve_or_missing,
            "__contains__": __contains__,
            "_consent_names": found,
        },
    )
