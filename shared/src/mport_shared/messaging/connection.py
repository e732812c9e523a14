"""A broker connection that reconnects by itself, to another node of a cluster when its own goes away,
and the channel settings every service uses."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from aio_pika import RobustConnection
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from mport_shared.logging import get_logger

log = get_logger(__name__)

# One attempt to reach one node, TCP and AMQP handshake together. Without a limit, a node whose
# address no longer answers (a stopped VM, a lost route) holds each attempt for the kernel's
# ~2 minutes of SYN retries before the next address is tried.
CONNECT_TIMEOUT_S = 15.0
RECONNECT_INTERVAL_S = 1.0

_SCHEME = re.compile(r"(?i)^(amqps?)://")
# A comma before `scheme://` starts the next URL (a wrong scheme is then reported, not taken as a vhost).
_NEXT_URL = re.compile(r"(?i),\s*(?=[a-z][a-z0-9+.-]*://)")


class BrokerAddressError(ValueError):
    """AMQP_URL does not name one or more brokers; the message never includes the password."""


def broker_addresses(url: str) -> tuple[URL, ...]:
    """The broker nodes AMQP_URL names, in order, each as a full single-node URL.

    Two spellings, which may be mixed:
    - hosts listed in one URL: `amqp://user:pass@host1:5672,host2:5672,host3/vhost?heartbeat=30`,
      every node with the same credentials, vhost and options;
    - full URLs separated by commas: `amqp://user:pass@host1/vhost,amqp://user:pass@host2/vhost`.
    A host without a port gets the scheme's (5672 for amqp, 5671 for amqps)."""
    text = url.strip()
    if not text:
        raise BrokerAddressError("AMQP_URL is empty; expected e.g. amqp://user:password@host:5672/vhost")
    addresses: list[URL] = []
    for part in _NEXT_URL.split(text):
        addresses.extend(_expand(part.strip()))
    return tuple(addresses)


def _expand(part: str) -> list[URL]:
    scheme = _SCHEME.match(part)
    if scheme is None:
        raise BrokerAddressError(f"{_redacted(part)!r} is not an amqp:// or amqps:// URL")
    rest = part[scheme.end() :]
    # The credentials end at the last @ before the query: a password may hold an @, a comma or
    # even a slash, a host never does.
    query_at = next((i for i, char in enumerate(rest) if char in "?#"), len(rest))
    userinfo, at, after = rest[:query_at].rpartition("@")
    after += rest[query_at:]
    end = next((i for i, char in enumerate(after) if char in "/?#"), len(after))
    hosts, tail = after[:end], after[end:]
    addresses = []
    for host in hosts.split(","):
        host = host.strip()
        where = f"host {host!r} in {_redacted(part)!r}"
        if not host:
            raise BrokerAddressError(f"an empty host in {_redacted(part)!r}")
        try:
            address = URL(f"{scheme[1].lower()}://{host}{tail}")
            port = address.explicit_port
            if at:
                user, _, password = userinfo.partition(":")
                address = address.with_user(unquote(user)).with_password(unquote(password) or None)
        except ValueError as exc:
            raise BrokerAddressError(f"{where}: {exc}") from None
        if not address.host:
            raise BrokerAddressError(f"{where}: no host name")
        if port is None:
            address = address.with_port(5671 if address.scheme == "amqps" else 5672)
        elif not 0 < port < 65536:
            raise BrokerAddressError(f"{where}: the port must be 1-65535")
        addresses.append(address)
    return addresses


def _redacted(part: str) -> str:
    """The URL as typed, for an error message: whatever comes before its last @ (the user name and
    password) hidden."""
    scheme = _SCHEME.match(part)
    if "@" not in part:
        return part
    return f"{scheme[0] if scheme else ''}***@{part.rpartition('@')[2]}"


def shown(address: URL) -> str:
    """A node's address for a log line: without its password."""
    return str(address.with_password("******") if address.password else address)


class FailoverConnection(RobustConnection):
    """aio-pika's robust connection over several broker nodes: every attempt that fails, and every
    loss of an established connection, moves it on to the next address (round robin), so it
    reconnects to a node that is still up. What RobustConnection restores after a reconnection
    (channels with their publisher confirms and QoS, exchanges, queues, bindings, consumers) is
    restored on the new node in the same way; a cluster shares them all."""

    def __init__(self, addresses: Sequence[URL], **kwargs: Any) -> None:
        if not addresses:
            raise BrokerAddressError("no broker address")
        self.addresses = tuple(addresses)
        self._next = 0
        super().__init__(self.addresses[0], **kwargs)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # Called for a failed attempt as for a dropped connection, before the next attempt starts:
        # that attempt, and the reconnection after a drop, go to the next node.
        if len(self.addresses) > 1 and not (self.is_closed or self.close_called):
            left = self.addresses[self._next]
            self._next = (self._next + 1) % len(self.addresses)
            self.url = self.addresses[self._next]
            # aio-pika's own line about this attempt names the address it goes to next.
            log.warning("broker node lost or unreachable", node=shown(left), next_node=shown(self.url))
        await super()._on_connection_close(closing)


async def connect(url: str, *, name: str) -> AbstractRobustConnection:
    """Connect to the first broker in AMQP_URL that answers (see `broker_addresses`), with automatic
    recovery; channels, queues and consumers are restored after a drop, on another node if need be.

    Raises BrokerAddressError for an AMQP_URL that names no broker, and the last node's
    connection error when none answers."""
    addresses = broker_addresses(url)
    failure: BaseException | None = None
    for first in range(len(addresses)):
        connection = FailoverConnection(
            (*addresses[first:], *addresses[:first]),
            client_properties={"connection_name": name},
            reconnect_interval=RECONNECT_INTERVAL_S,
            fail_fast=True,
        )
        try:
            await connection.connect(timeout=CONNECT_TIMEOUT_S)
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
            await connection.close()
            if len(addresses) > 1:
                log.warning(
                    "broker node did not answer; trying the next",
                    node=shown(addresses[first]),
                    reason=repr(exc),
                )
            continue
        return connection
    assert failure is not None
    raise failure


async def confirming_channel(connection: AbstractRobustConnection) -> AbstractRobustChannel:
    """A channel with publisher confirms on, where an unroutable (returned) message raises."""
    return await connection.channel(publisher_confirms=True, on_return_raises=True)
