"""URIs are normalised before they are checked against the resource base, and what is checked is
what is sent: dot segments, percent-encoded dots and slashes, default ports, case and empty
segments cannot lead a request (with the client token) out of the resource base."""

from __future__ import annotations

import pytest

from espi.client import (
    CustodianProfile,
    TokenKind,
    UnsafeURI,
    check_uri,
    normalize_uri,
    owner,
    profile,
    token_kind,
    within,
)

BASE = "https://api.example.com/GreenButtonConnect/espi/1_1/resource"


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        (f"{BASE}/Batch/Bulk/1", f"{BASE}/Batch/Bulk/1"),
        ("HTTPS://API.Example.COM/a/B", "https://api.example.com/a/B"),  # path case is kept
        ("https://api.example.com:443/a", "https://api.example.com/a"),
        ("http://api.example.com:80/a", "http://api.example.com/a"),
        ("http://api.example.com:443/a", "http://api.example.com:443/a"),  # not http's default
        ("https://api.example.com:0443/a", "https://api.example.com/a"),
        ("https://api.example.com./a", "https://api.example.com/a"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://h/a/./b/../c", "https://h/a/c"),
        ("https://h/a/b/../../../../c", "https://h/c"),  # above the root stays at the root
        ("https://h/a//b///c/", "https://h/a/b/c"),
        ("https://h/a/%2e/b/%2E%2e/c", "https://h/a/c"),
        ("https://h/a/..%2fb", "https://h/b"),
        ("https://h/a/%2F..%2Fb", "https://h/b"),
        ("https://h/a%2Fb", "https://h/a/b"),
        ("https://h/%41%7e%5f%2D", "https://h/A~_-"),
        ("https://h/a%3ab", "https://h/a%3Ab"),
        ("https://h/a?x=%3a&y=%41", "https://h/a?x=%3A&y=A"),
        ("https://h/a?b=../c", "https://h/a?b=../c"),  # the query is data, not a path
        ("https://h/a#fragment", "https://h/a"),
        ("https://[::1]:8443/a", "https://[::1]:8443/a"),
        ("http://127.0.0.1:5001/x/../y", "http://127.0.0.1:5001/y"),
    ],
)
def test_normalize(uri: str, normal: str) -> None:
    assert normalize_uri(uri) == normal
    assert normalize_uri(normal) == normal  # a fixed point


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("ftp://h/a", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("//h/a", "only http and https"),
        ("https://user:pass@h/a", "user information"),
        ("https://h@evil.example/a", "user information"),
        ("https://evil.example\\@h/a", "'\\\\\\\\' does not belong"),
        ("https://h/a\\..\\b", "does not belong"),
        ("https://h/a b", "' ' does not belong"),
        ("https://h/a\nb", "does not belong"),
        ("https://h/é", "does not belong"),
        ("https://h/a%2", "two hex digits"),
        ("https://h/a%zz", "two hex digits"),
        ("https://h/a/%252e%252e/b", "encoded '%'"),
        ("https://h/a/%5c../b", "backslash"),
        ("https://h/a/..;/b", "path parameters"),
        ("https://h:99999/a", "out of range"),
        ("https://h:x/a", "Port could not be cast"),
        ("https:///a", "no host"),
        ("https://h%2e.example/a", "does not belong|not a host"),
        ("https://h/a[0]", "would be sent as"),
    ],
)
def test_refused(uri: str, why: str) -> None:
    with pytest.raises(UnsafeURI, match=why) as caught:
        normalize_uri(uri)
    assert isinstance(caught.value, ValueError) and caught.value.uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        f"{BASE}/../../../../?/Batch/Bulk/x",
        f"{BASE}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/?/Batch/Bulk/x",
        f"{BASE}/%2E%2E/%2E%2E/%2E%2E/%2E%2E/?/Batch/Bulk/x",
        f"{BASE}/..%2f..%2f..%2f..%2f?/Batch/Bulk/x",
        f"{BASE}/..%2F..%2F..%2F..%2F?/Batch/Bulk/x",
        f"{BASE}/.%2e/.%2e/.%2e/.%2e/Batch/Bulk/x",
        f"{BASE}/../resourceX/Batch/Bulk/x",
        f"{BASE}X/Batch/Bulk/x",  # a longer name is not under the base
        "https://api.example.com/GreenButtonConnect/espi/1_1/",
        "http://api.example.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/x",
        "https://api.example.com:8443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/x",
        "https://api.example.com.evil.example/GreenButtonConnect/espi/1_1/resource/x",
        "https://evil.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/x",
    ],
)
def test_outside_the_base_is_refused_naming_uri_and_base(uri: str) -> None:
    assert not within(uri, BASE)
    with pytest.raises(UnsafeURI) as caught:
        check_uri(uri, BASE)
    message = str(caught.value)
    assert uri in message and f"outside the resource base {BASE}" in message


@pytest.mark.parametrize(
    "uri",
    [
        BASE,
        f"{BASE}/",
        f"{BASE}/Batch/Bulk/1?correlationID=9",
        "HTTPS://API.EXAMPLE.COM:443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        f"{BASE}/Batch/x/../Bulk/1",
        f"{BASE}//Batch//Bulk/1/",
    ],
)
def test_inside_the_base(uri: str) -> None:
    assert within(uri, BASE)
    assert within(uri, BASE + "/")  # however the base is written


def test_dot_segments_resolve_to_what_they_name() -> None:
    assert check_uri(f"{BASE}/Batch/x/../Bulk/1", BASE) == f"{BASE}/Batch/Bulk/1"
    expected = "resolves to https://api.example.com/?/Batch/Bulk/x"
    with pytest.raises(UnsafeURI, match=expected.replace("?", r"\?")):
        check_uri(f"{BASE}/../../../../?/Batch/Bulk/x", BASE)


def test_notification_uris_carry_only_the_listed_parameters() -> None:
    listed = ("correlationID",)
    uri = f"{BASE}/Batch/Bulk/1?correlationID=abc"
    assert check_uri(uri, BASE, listed) == uri
    assert check_uri(f"{BASE}/Batch/Bulk/1", BASE, listed) == f"{BASE}/Batch/Bulk/1"
    for variant, why in [
        (f"{BASE}/Batch/Bulk/1?x=1", "query parameter.s. x; .* carry only: correlationID"),
        (f"{BASE}/Batch/Bulk/1?correlationID=abc&x=1", r"parameter\(s\) x"),
        (f"{BASE}/Batch/Bulk/1?correlationID=a&correlationID=a", "a repeated parameter"),
    ]:
        with pytest.raises(UnsafeURI, match=why):
            check_uri(variant, BASE, listed)
    with pytest.raises(UnsafeURI, match="carry only: none"):
        check_uri(f"{BASE}/Batch/Bulk/1?correlationID=abc", BASE, ())
    two = ("b", "a")
    assert check_uri(f"{BASE}/x?b=2&a=1", BASE, two) == f"{BASE}/x?a=1&b=2"  # one order


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("Batch/Bulk/51", TokenKind.CLIENT),
        ("Batch/BulkRetailCustomerInfo/51", TokenKind.CLIENT),
        ("Batch/BulkRetailDRPrgInfo/51", TokenKind.CLIENT),
        ("Authorization", TokenKind.CLIENT),
        ("Authorization/7", TokenKind.CLIENT),
        ("ReadServiceStatus", TokenKind.CLIENT),
        ("DownloadSampleData", TokenKind.CLIENT),
        ("ApplicationInformation/3", TokenKind.REGISTRATION),
        ("Batch/Subscription/7", TokenKind.CUSTOMER),
        ("Batch/Subscription/7/UsagePoint/A1", TokenKind.CUSTOMER),
        ("Batch/RetailCustomer/7", TokenKind.CUSTOMER),
        ("Batch/RetailDRPrgInfo/7", TokenKind.CUSTOMER),
        ("Subscription/7/UsagePoint", TokenKind.CUSTOMER),
        ("ReadingType/1", TokenKind.CUSTOMER),
        ("LocalTimeParameters/1", TokenKind.CUSTOMER),
        ("Batch/Subscription/7?x=/Batch/Bulk/51", TokenKind.CUSTOMER),  # whole segments only
        ("Batch/BulkX/51", TokenKind.CUSTOMER),
    ],
)
def test_token_kind_is_decided_by_the_path(path: str, kind: TokenKind) -> None:
    assert token_kind(path) is kind


def test_the_owner_of_a_uri_is_found_after_normalisation() -> None:
    pge = profile("pge")
    local = profile("local")
    assert owner(f"{pge.resource_base}/Batch/Bulk/1", [local, pge]) is pge
    assert owner("HTTP://127.0.0.1:5001/GreenButtonConnect/espi/1_1/resource/x", [pge, local])
    assert owner(f"{pge.resource_base}/../../x", [local, pge]) is None
    assert owner("https://evil.example/x", [local, pge]) is None


def test_profiles_from_settings() -> None:
    made = profile("pge", client_id="id", requests_per_second="2.5", pkce="true",
                   notification_params="correlationID, subscriptionId")  # fmt: skip
    assert (made.client_id, made.requests_per_second, made.pkce) == ("id", 2.5, True)
    assert made.notification_params == ("correlationID", "subscriptionId")
    assert made.token_url == "https://api.pge.com/datacustodian/oauth/v2/token"
    with pytest.raises(ValueError, match=r"unknown setting\(s\) colour; known: .*bulk_id"):
        profile("pge", colour="red")
    with pytest.raises(ValueError, match="custodian acme: set token_url, resource_base"):
        profile("acme")
    with pytest.raises(ValueError, match="'iso' or 'epoch'"):
        CustodianProfile("x", published_format="unix")
    acme = profile("acme", token_url="https://acme.example/token",
                   resource_base="https://acme.example/espi/1_1/resource", published_format="epoch")  # fmt: skip
    assert acme.published(86400) == {"published-min": "86400"}
    assert made.published(86400, 2 * 86400) == {
        "published-min": "1970-01-02T00:00:00Z",
        "published-max": "1970-01-03T00:00:00Z",
    }
