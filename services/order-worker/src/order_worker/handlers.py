"""Provisioning: turn an OrderPlaced into a carrier order and report how it went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mport_shared.db import insert_if_absent
from mport_shared.events import (
    Envelope,
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
    OrderSnapshot,
    OrderSubmitted,
    envelop,
)
from mport_shared.logging import get_logger
from mport_shared.messaging.inbox import claim_message
from mport_shared.messaging.outbox import add_to_outbox
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_worker.adapters.carrier import (
    Carrier,
    CarrierOrder,
    CarrierOrderRequest,
    CarrierOrderState,
    CarrierRejected,
    look_again,
    wait_until_terminal,
)
from order_worker.models import CarrierSubmission, tables

log = get_logger(__name__)

SOURCE = "/mport/order-worker"
CONSUMER = "order-worker"
_TERMINAL = (CarrierOrderState.COMPLETED.value, CarrierOrderState.FAILED.value)
# When the carrier is first asked how the order went; later looks back off from twice this.
FIRST_LOOK_S = 0.005


@dataclass
class OrderProvisioning:
    sessions: async_sessionmaker[AsyncSession]
    carrier: Carrier
    carrier_wait_s: float

    async def on_order_placed(self, envelope: Envelope[EventPayload]) -> None:
        """Submit to the carrier (idempotent by our order id), then wait for its outcome.

        A redelivery after a crash re-submits (the carrier returns the same order), records
        OrderSubmitted only once, and publishes the outcome only once."""
        assert isinstance(envelope.data, OrderPlaced)
        order = envelope.data.order
        if await self._already_handled(envelope.id):
            log.info("duplicate OrderPlaced ignored", order_id=str(order.order_id))
            return
        try:
            carrier_order = await self.carrier.submit(_carrier_request(order))
        except CarrierRejected as exc:
            log.info("carrier rejected order", order_id=str(order.order_id), reason=exc.reason)
            await self._finish(envelope, order, carrier_order_id=None, failure=exc.reason)
            return
        # A first look before recording anything: a carrier that finishes at once (the simulator,
        # or a fast real one) then costs one transaction instead of two. OrderSubmitted still goes
        # out before the outcome (same transaction, outbox order), and only once.
        carrier_order = await look_again(self.carrier, carrier_order, after_s=FIRST_LOOK_S)
        if carrier_order.is_terminal:
            async with self.sessions.begin() as session:
                await self._record_submission(session, order, carrier_order)
                await self._finish_in(session, envelope, order, carrier_order.id, _failure_of(carrier_order))
            return
        async with self.sessions.begin() as session:
            await self._record_submission(session, order, carrier_order)
        final = await wait_until_terminal(
            self.carrier, carrier_order, timeout_s=self.carrier_wait_s, first_delay_s=2 * FIRST_LOOK_S
        )
        await self._finish(envelope, order, carrier_order_id=final.id, failure=_failure_of(final))

    async def _already_handled(self, message_id: str) -> bool:
        inbox = tables.inbox
        async with self.sessions() as session:
            # One read needs no transaction: autocommit makes it one round trip, not three
            # (BEGIN, SELECT, ROLLBACK). _finish claims the message id transactionally anyway.
            connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            found = await connection.scalar(
                select(inbox.c.message_id).where(
                    inbox.c.consumer == CONSUMER, inbox.c.message_id == message_id
                )
            )
        return found is not None

    @staticmethod
    async def _record_submission(
        session: AsyncSession, order: OrderSnapshot, carrier_order: CarrierOrder
    ) -> None:
        order_id = str(order.order_id)
        created = await insert_if_absent(
            session,
            CarrierSubmission,
            {"order_id": order_id, "carrier_order_id": carrier_order.id, "state": "submitted"},
            keys=["order_id"],
        )
        if not created:
            await session.execute(
                update(CarrierSubmission)
                .where(CarrierSubmission.order_id == order_id)
                .values(attempts=CarrierSubmission.attempts + 1)
            )
            return
        log.info("order submitted to carrier", order_id=order_id, carrier_order_id=carrier_order.id)
        await add_to_outbox(
            session,
            tables.outbox,
            envelop(
                OrderSubmitted(
                    order_id=order.order_id,
                    carrier_order_id=carrier_order.id,
                    submitted_at=datetime.now(UTC),
                ),
                source=SOURCE,
                correlation_id=order_id,
                subject=order_id,
            ),
        )

    async def _finish(
        self,
        envelope: Envelope[EventPayload],
        order: OrderSnapshot,
        *,
        carrier_order_id: str | None,
        failure: str | None,
    ) -> None:
        """Record the outcome and its event in one transaction with the inbox entry."""
        async with self.sessions.begin() as session:
            await self._finish_in(session, envelope, order, carrier_order_id, failure)

    @staticmethod
    async def _finish_in(
        session: AsyncSession,
        envelope: Envelope[EventPayload],
        order: OrderSnapshot,
        carrier_order_id: str | None,
        failure: str | None,
    ) -> None:
        order_id = str(order.order_id)
        now = datetime.now(UTC)
        if not await claim_message(session, tables.inbox, consumer=CONSUMER, message_id=envelope.id):
            return
        state = "failed" if failure else "completed"
        if carrier_order_id is None:
            # Rejected outright: the carrier made no order, but the outcome is still recorded.
            await insert_if_absent(
                session,
                CarrierSubmission,
                {"order_id": order_id, "carrier_order_id": "", "state": "submitted"},
                keys=["order_id"],
            )
        moved = await session.execute(
            update(CarrierSubmission)
            .where(CarrierSubmission.order_id == order_id, CarrierSubmission.state.not_in(_TERMINAL))
            .values(state=state, failure_reason=failure, finished_at=now)
        )
        if getattr(moved, "rowcount", 0) != 1:
            return  # another delivery of this order already reported the outcome
        outcome: EventPayload
        if failure is None:
            assert carrier_order_id is not None
            outcome = OrderCompleted(order=order, carrier_order_id=carrier_order_id, completed_at=now)
        else:
            outcome = OrderFailed(
                order=order, carrier_order_id=carrier_order_id, reason=failure, failed_at=now
            )
        log.info("order finished", order_id=order_id, state=state, reason=failure)
        await add_to_outbox(
            session,
            tables.outbox,
            envelop(outcome, source=SOURCE, correlation_id=order_id, subject=order_id),
        )


def _failure_of(final: CarrierOrder) -> str | None:
    if final.state is CarrierOrderState.COMPLETED:
        return None
    return final.failure_reason or f"carrier order ended {final.state.value}"


def _carrier_request(order: OrderSnapshot) -> CarrierOrderRequest:
    return CarrierOrderRequest(
        order_id=str(order.order_id),
        msisdn=order.msisdn,
        product_offering_id=order.carrier_product_code,
        action=order.action,
        characteristics=dict(order.details),
    )
