"""A broker connection that reconnects by itself, and the channel settings every service uses."""

from __future__ import annotations

from aio_pika import connect_robust
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection


async def connect(url: str, *, name: str) -> AbstractRobustConnection:
    """Connect with automatic recovery; channels, queues and consumers are restored after a drop."""
    return await connect_robust(
        url,
        client_properties={"connection_name": name},
        reconnect_interval=1.0,
        fail_fast=True,
    )


async def confirming_channel(connection: AbstractRobustConnection) -> AbstractRobustChannel:
    """A channel with publisher confirms on, where an unroutable (returned) message raises."""
    return await connection.channel(publisher_confirms=True, on_return_raises=True)
