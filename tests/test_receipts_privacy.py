from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.exceptions import ConfigurationError
from consent.receipts import DEFAULT_RETENTION
from consent.receipts import anonymize_ip
from consent.receipts import reduce_user_agent
from consent.receipts.privacy import clean_text


@pytest.mark.parametrize(
    "ip, expected",
    [
        ("203.0.113.77", "203.0.113.0/24"),
        (" 198.51.100.255 ", "198.51.100.0/24"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234::/48"),
        ("2001:DB8:ABCD:0012:0000:0000:0000:0001", "2001:db8:abcd::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("203.0.113.77%eth0", "203.0.113.0/24"),
    ],
)
def test_anonymize_ip_truncates(ip, expected):
    assert anonymize_ip(ip, "truncate") == expected


@pytest.mark.parametrize("ip", ["203.0.113.77", "2001:db8:1234:5678::1"])
def test_anonymize_ip_hashes_with_the_pepper(ip):
    first = anonymize_ip(ip, "hash", pepper=b"p" * 32)
    assert first is not None
    assert len(first) == 64
    assert ip not in first
    assert first != ip
    assert anonymize_ip(ip, "hash", pepper=b"p" * 32) == first
    assert anonymize_ip(ip, "hash", pepper=b"q" * 32) != first


def test_anonymize_ip_hash_does_not_depend_on_spelling():
    pepper = b"k" * 32
    assert anonymize_ip("2001:DB8::1", "hash", pepper=pepper) == anonymize_ip(
        "2001:db8:0:0::1", "hash", pepper=pepper
    )


@pytest.mark.parametrize(
    "ip",
    [
        None,
        "",
        "unknown",
        "999.1.1.1",
        "203.0.113.77, x",
        "203.0.113.077",
        "203.0.113",
        "203.0.113.77\x00",
    ],
)
@pytest.mark.parametrize("mode", ["truncate", "hash", "none"])
def test_anonymize_ip_gives_none_for_what_is_not_an_address(ip, mode):
    assert anonymize_ip(ip, mode, pepper=b"p" * 32) is None


def test_anonymize_ip_none_mode_stores_nothing():
    assert anonymize_ip("203.0.113.77", "none") is None


@pytest.mark.parametrize("pepper", [None, b""])
def test_anonymize_ip_hash_needs_a_pepper(pepper):
    with pytest.raises(ConfigurationError, match="pepper"):
        anonymize_ip("203.0.113.77", "hash", pepper=pepper)


def test_anonymize_ip_refuses_an_unknown_mode():
    with pytest.raises(ConfigurationError, match="truncate"):
        anonymize_ip("203.0.113.77", "sha256")


CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like"
    " Gecko) Chrome/156.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    "user_agent, expected",
    [
        (None, ""),
        ("", ""),
        (CHROME_WINDOWS, "Chrome 156 / Windows"),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox 133 / Linux",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            "Safari 17 / macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"
            " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148"
            " Safari/604.1",
            "Safari 17 / iOS",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
            "Chrome 124 / iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like"
            " Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
            "Chrome 124 / Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML,"
            " like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
            "Edge 124 / Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML,"
            " like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0",
            "Opera 110 / Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36"
            " (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile"
            " Safari/537.36",
            "Samsung Internet 25 / Android",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML,"
            " like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome 124 / Chrome OS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
            "Internet Explorer 11 / Windows",
        ),
        ("curl/8.5.0", "Other"),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Other",
        ),
        ("SomeBrowser/3.0 (Windows NT 10.0)", "Other / Windows"),
        ("Firefox/" + "9" * 50, "Firefox 9999 / Other"),
        ("A\x00B\nC\x7fD\x85E", "Other"),
    ],
)
def test_reduce_user_agent(user_agent, expected):
    assert reduce_user_agent(user_agent) == expected


def test_reduce_user_agent_reads_a_bounded_prefix():
    # A huge header costs no more than its first 512 characters.
    padded = "x" * 600 + CHROME_WINDOWS
    assert reduce_user_agent(padded) == "Other"
    assert reduce_user_agent(CHROME_WINDOWS + "y" * 100_000) == "Chrome 156 / Windows"


@pytest.mark.parametrize("limit", [0, 3, 200])
def test_clean_text_removes_control_characters_and_bounds_length(limit):
    cleaned = clean_text("Agent\x00\x1b[31m\ud800" + "z" * 300, limit)
    assert len(cleaned) <= limit
    assert "Agent[31m?zz".startswith(cleaned[:12]) or limit < 12
    assert "\x00" not in cleaned and "\x1b" not in cleaned


def test_default_retention_outlives_the_longest_choice():
    assert DEFAULT_RETENTION >= timedelta(days=395)


@given(
    st.one_of(
        st.ip_addresses(v=4).map(lambda ip: (str(ip), 24)),
        st.ip_addresses(v=6)
        .filter(lambda ip: ip.ipv4_mapped is None)
        .map(lambda ip: (str(ip), 48)),
    )
)
def test_anonymize_ip_truncates_like_ip_network(ip_and_prefix):
    ip, prefix = ip_and_prefix
    expected = str(ipaddress.ip_network((ip, prefix), strict=False))
    assert anonymize_ip(ip, "truncate") == expected
