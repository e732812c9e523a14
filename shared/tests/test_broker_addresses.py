"""AMQP_URL naming several broker nodes: both spellings, and clear errors that never show a password."""

from __future__ import annotations

import pytest
from mport_shared.messaging.connection import BrokerAddressError, broker_addresses, shown


def test_one_url_is_one_node() -> None:
    assert [str(a) for a in broker_addresses("amqp://guest:guest@127.0.0.1:5672/")] == [
        "amqp://guest:guest@127.0.0.1:5672/"
    ]


def test_hosts_listed_in_one_url_share_its_credentials_vhost_and_options() -> None:
    addresses = broker_addresses(
        "amqp://mport:s3cret@rabbit-0:5672,rabbit-1:5673,rabbit-2/mport?heartbeat=30"
    )
    assert [str(a) for a in addresses] == [
        "amqp://mport:s3cret@rabbit-0:5672/mport?heartbeat=30",
        "amqp://mport:s3cret@rabbit-1:5673/mport?heartbeat=30",
        "amqp://mport:s3cret@rabbit-2:5672/mport?heartbeat=30",  # the scheme's port
    ]
    assert [(a.host, a.port, a.path, a.user, a.password) for a in addresses][2] == (
        "rabbit-2", 5672, "/mport", "mport", "s3cret",
    )  # fmt: skip


def test_full_urls_separated_by_commas_each_keep_their_own_parts() -> None:
    addresses = broker_addresses("amqp://a:1@h1:5672/v, amqps://b:2@h2/v2?heartbeat=5,AMQP://c:3@h3:5674/")
    assert [(a.scheme, a.user, a.host, a.port, a.path, a.query_string) for a in addresses] == [
        ("amqp", "a", "h1", 5672, "/v", ""),
        ("amqps", "b", "h2", 5671, "/v2", "heartbeat=5"),
        ("amqp", "c", "h3", 5674, "/", ""),
    ]


def test_both_spellings_mixed_ipv6_and_an_encoded_vhost() -> None:
    addresses = broker_addresses("amqp://u:p@[::1]:5672,h2:5673/%2F,amqp://u:p@h3/%2F")
    assert [(a.host, a.port, a.raw_path) for a in addresses] == [
        ("::1", 5672, "/%2F"),
        ("h2", 5673, "/%2F"),
        ("h3", 5672, "/%2F"),
    ]


def test_a_password_may_hold_a_comma_an_at_sign_or_a_slash() -> None:
    [first, second] = broker_addresses("amqp://u:a,b@c/d@h1:5672,h2:5673/v")
    assert (first.password, first.host, first.port, first.path) == ("a,b@c/d", "h1", 5672, "/v")
    assert (second.password, second.host) == ("a,b@c/d", "h2")
    [encoded] = broker_addresses("amqp://u:a%2Cb%40c%2Fd%25@h1/v")
    assert encoded.password == "a,b@c/d%"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "AMQP_URL is empty"),
        ("   ", "AMQP_URL is empty"),
        ("http://u:hunter2@h/", "is not an amqp:// or amqps:// URL"),
        ("h1:5672,h2:5672", "is not an amqp:// or amqps:// URL"),
        ("amqp://u:hunter2@h1:5672,,h2/", "an empty host"),
        ("amqp://u:hunter2@h1:5672,/", "an empty host"),
        ("amqp://u:hunter2@h1:99999/", "host 'h1:99999'"),
        ("amqp://u:hunter2@h1:0/", "the port must be 1-65535"),
        ("amqp://u:hunter2@h1:abc,h2/", "host 'h1:abc'"),
        ("amqp://u:hunter2@:5672/", "no host name"),
        ("amqp://u:hunter2@h1/,ftp://h2/", "is not an amqp:// or amqps:// URL"),
    ],
)
def test_a_bad_amqp_url_is_a_clear_error_without_the_password(url: str, says: str) -> None:
    with pytest.raises(BrokerAddressError, match=says) as raised:
        broker_addresses(url)
    assert "hunter2" not in str(raised.value)


def test_a_node_is_logged_without_its_password() -> None:
    [address] = broker_addresses("amqp://mport:hunter2@rabbit-0:5672/mport")
    assert shown(address) == "amqp://mport:******@rabbit-0:5672/mport"
    assert "hunter2" not in shown(address)


@pytest.mark.parametrize(
    "url",
    [
        "amqp://ops:s3cret@rabbit-0:5672,rabbit-1:5672,rabbit-2:5672/mport",
        "amqp://ops:s3cret@rabbit-0:5672/mport, amqp://ops:s3cret@rabbit-1:5672/mport",
    ],
)
def test_mport_ops_asks_the_management_api_about_the_vhost_of_a_node_list(url: str) -> None:
    from mport_shared.ops.broker import vhost_and_auth

    assert vhost_and_auth(url) == ("mport", ("ops", "s3cret"))
    assert vhost_and_auth("amqp://guest:guest@127.0.0.1:5672/") == ("/", ("guest", "guest"))
