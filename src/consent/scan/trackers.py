"""A small list of well-known analytics and advertising trackers.

Used when a site publishes no cookie declaration: a tracker found before a
choice, or after "Reject all", is a finding. The list is short on purpose;
it names the trackers met on most sites, not every one there is.

Sources: cookie names, their vendors and categories as described in the
Open Cookie Database (github.com/jkwakman/Open-Cookie-Database, Apache
License 2.0) and in each vendor's own cookie documentation; hosts are the
collection and tag-loading hosts those vendors document for their tags.
Names use shell-style wildcards (``_ga_*``); a host matches itself and its
subdomains.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import typing as t

#: What a tracker is for.
Purpose = t.Literal["analytics", "advertising"]


@dataclasses.dataclass(frozen=True)
class Tracker:
    """One entry of the list.

    :param pattern: A cookie name with ``*`` wildcards, or a host name.
    :param vendor: Who runs it.
    :param purpose: ``"analytics"`` or ``"advertising"``.
    """

    pattern: str
    vendor: str
    purpose: Purpose


def _entries(vendor: str, purpose: Purpose, *patterns: str) -> tuple[Tracker, ...]:
    return tuple(Tracker(p, vendor, purpose) for p in patterns)


#: Cookie names of common trackers.
TRACKER_COOKIES: tuple[Tracker, ...] = (
    *_entries("Google Analytics", "analytics", "_ga", "_ga_*", "_gid", "_gat"),
    *_entries("Google Analytics", "analytics", "_gat_*", "__utm*", "_dc_gtm_*"),
    *_entries("Google Ads", "advertising", "_gcl_*", "_gac_*", "IDE", "test_cookie"),
    *_entries("Google Ads", "advertising", "DSID", "NID"),
    *_entries("Meta Pixel", "advertising", "_fbp", "_fbc", "fr"),
    *_entries("Microsoft Advertising", "advertising", "_uetsid", "_uetvid", "MUID"),
    *_entries("Microsoft Clarity", "analytics", "_clck", "_clsk", "CLID"),
    *_entries("Hotjar", "analytics", "_hjid", "_hjSession*", "_hjIncludedIn*"),
    *_entries("LinkedIn Insight", "advertising", "li_fat_id", "bcookie", "lidc"),
    *_entries("LinkedIn Insight", "advertising", "UserMatchHistory"),
    *_entries("TikTok Pixel", "advertising", "_ttp", "_tt_enable_cookie"),
    *_entries("Pinterest Tag", "advertising", "_pin_unauth", "_pinterest_*"),
    *_entries("X (Twitter) Pixel", "advertising", "personalization_id", "muc_ads"),
    *_entries("Adobe Analytics", "analytics", "s_vi", "s_fid", "AMCV_*"),
    *_entries("Adobe Audience Manager", "advertising", "demdex"),
    *_entries("Matomo", "analytics", "_pk_id*", "_pk_ses*"),
    *_entries("Yandex Metrica", "analytics", "_ym_uid", "_ym_d"),
    *_entries("HubSpot", "analytics", "__hstc", "__hssc", "hubspotutk"),
    *_entries("Mixpanel", "analytics", "mp_*_mixpanel"),
    *_entries("Segment", "analytics", "ajs_anonymous_id", "ajs_user_id"),
    *_entries("Criteo", "advertising", "cto_bundle"),
    *_entries("Quantcast", "advertising", "__qca"),
)

#: Hosts of common trackers: their tags and the endpoints they report to.
TRACKER_HOSTS: tuple[Tracker, ...] = (
    *_entries("Google Analytics", "analytics", "google-analytics.com"),
    *_entries("Google Analytics", "analytics", "analytics.google.com"),
    *_entries("Google Tag Manager", "advertising", "googletagmanager.com"),
    *_entries("Google Ads", "advertising", "doubleclick.net", "googleadservices.com"),
    *_entries("Google Ads", "advertising", "googlesyndication.com"),
    *_entries("Meta Pixel", "advertising", "connect.facebook.net"),
    *_entries("Meta Pixel", "advertising", "www.facebook.com"),
    *_entries("Microsoft Advertising", "advertising", "bat.bing.com"),
    *_entries("Microsoft Clarity", "analytics", "clarity.ms"),
    *_entries("Hotjar", "analytics", "hotjar.com", "hotjar.io"),
    *_entries("LinkedIn Insight", "advertising", "snap.licdn.com"),
    *_entries("LinkedIn Insight", "advertising", "px.ads.linkedin.com"),
    *_entries("TikTok Pixel", "advertising", "analytics.tiktok.com"),
    *_entries("Pinterest Tag", "advertising", "ct.pinterest.com"),
    *_entries("X (Twitter) Pixel", "advertising", "ads-twitter.com"),
    *_entries("X (Twitter) Pixel", "advertising", "analytics.twitter.com"),
    *_entries("Adobe Analytics", "analytics", "omtrdc.net"),
    *_entries("Adobe Audience Manager", "advertising", "demdex.net"),
    *_entries("Yandex Metrica", "analytics", "mc.yandex.ru"),
    *_entries("HubSpot", "analytics", "hs-analytics.net", "hs-scripts.com"),
    *_entries("Mixpanel", "analytics", "api-js.mixpanel.com"),
    *_entries("Segment", "analytics", "cdn.segment.com", "api.segment.io"),
    *_entries("Criteo", "advertising", "criteo.com", "criteo.net"),
    *_entries("Quantcast", "advertising", "quantserve.com"),
    *_entries("Comscore", "analytics", "scorecardresearch.com"),
    *_entries("Xandr", "advertising", "adnxs.com"),
)


def tracker_cookie(name: str) -> Tracker | None:
    """The tracker that sets a cookie called ``name``, if it is a known one.

    :param name: The cookie name, compared case-sensitively as browsers do.
    """
    for tracker in TRACKER_COOKIES:
        if fnmatch.fnmatchcase(name, tracker.pattern):
            return tracker
    return None


def tracker_host(host: str) -> Tracker | None:
    """The tracker that runs ``host`` or a domain above it, if it is known.

    :param host: A host name, such as ``region1.google-analytics.com``.
    """
    host = host.lower().rstrip(".")
    for tracker in TRACKER_HOSTS:
        if host == tracker.pattern or host.endswith("." + tracker.pattern):
            return tracker
    return None
