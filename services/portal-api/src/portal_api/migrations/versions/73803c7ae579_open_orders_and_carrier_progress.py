"""open orders enforced by the database; the carrier's progress on the order

Revision ID: 73803c7ae579
Revises: 5bed02115b19
Create Date: 2026-11-27 10:00:00.000000

Orders get:
- subscription_id (FK to subscriptions), backfilled from the employee's subscription (or, failing
  that, from the msisdn): what may be open at once is counted per subscription;
- ended_at: when a completed monthly add-on was ended (unused until "Avslutt" exists);
- carrier_state, expected_completion_at, carrier_state_at: the carrier's progress;
- failure_code: why a failed order failed (every earlier failure was a carrier rejection).

Then three partial unique indexes (PostgreSQL and SQLite alike):
- uq_orders_open_monthly_addon (subscription_id, product_code) WHERE kind = 'addon' AND
  billing = 'monthly' AND status != 'failed' AND ended_at IS NULL
- uq_orders_open_plan_change (subscription_id) WHERE kind = 'plan' AND status IN open
- uq_orders_open_sim_service (subscription_id, product_code) WHERE kind IN ('sim_order',
  'sim_activation') AND status IN open

Before this revision the rule was a read then an insert, so a database may already hold rows the
indexes refuse. They are resolved, not refused:
- monthly add-on: one order keeps its place (the one whose completion activated the service, else
  the earliest completed, else the earliest open); the others get ended_at, so they no longer hold
  one (an open one may still complete; the service is then already active).
- plan change and SIM order/activation: the newest open order stays open (the employee's latest
  wish); the older ones are marked failed with a reason saying so.
"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '73803c7ae579'
down_revision: Union[str, Sequence[str], None] = '5bed02115b19'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OPEN = "status IN ('received', 'submitted')"
MONTHLY_ADDON_WHERE = "kind = 'addon' AND billing = 'monthly' AND status != 'failed' AND ended_at IS NULL"
PLAN_CHANGE_WHERE = f"kind = 'plan' AND {OPEN}"
SIM_SERVICE_WHERE = f"kind IN ('sim_order', 'sim_activation') AND {OPEN}"
INDEXES = (
    ("uq_orders_open_monthly_addon", ["subscription_id", "product_code"], MONTHLY_ADDON_WHERE),
    ("uq_orders_open_plan_change", ["subscription_id"], PLAN_CHANGE_WHERE),
    ("uq_orders_open_sim_service", ["subscription_id", "product_code"], SIM_SERVICE_WHERE),
)
SUPERSEDED = (
    "Replaced by a newer order of the same kind: only one may be open at a time "
    "(resolved when the database was upgraded)."
)

orders = sa.table(
    "orders",
    sa.column("id", sa.Uuid()),
    sa.column("employee_id", sa.Uuid()),
    sa.column("subscription_id", sa.Uuid()),
    sa.column("msisdn", sa.String()),
    sa.column("product_code", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("billing", sa.String()),
    sa.column("status", sa.String()),
    sa.column("failure_reason", sa.Text()),
    sa.column("failure_code", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("ended_at", sa.DateTime(timezone=True)),
)
subscriptions = sa.table(
    "subscriptions", sa.column("id", sa.Uuid()), sa.column("employee_id", sa.Uuid()), sa.column("msisdn", sa.String())
)
active_services = sa.table(
    "active_services",
    sa.column("subscription_id", sa.Uuid()),
    sa.column("product_code", sa.String()),
    sa.column("order_id", sa.Uuid()),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subscription_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('failure_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('carrier_state', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('expected_completion_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('carrier_state_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True))

    connection = op.get_bind()
    _backfill_subscriptions(connection)
    connection.execute(
        orders.update().where(orders.c.status == "failed").values(failure_code="carrier_rejected")
    )
    _resolve_duplicates(connection)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('subscription_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            op.f('fk_orders_subscription_id_subscriptions'), 'subscriptions', ['subscription_id'], ['id']
        )
    for name, columns, where in INDEXES:
        op.create_index(
            name, 'orders', columns, unique=True, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
        )


def _backfill_subscriptions(connection: sa.Connection) -> None:
    by_employee = (
        sa.select(subscriptions.c.id).where(subscriptions.c.employee_id == orders.c.employee_id).scalar_subquery()
    )
    connection.execute(orders.update().where(orders.c.subscription_id.is_(None)).values(subscription_id=by_employee))
    by_msisdn = sa.select(subscriptions.c.id).where(subscriptions.c.msisdn == orders.c.msisdn).scalar_subquery()
    connection.execute(orders.update().where(orders.c.subscription_id.is_(None)).values(subscription_id=by_msisdn))
    orphans = connection.scalar(
        sa.select(sa.func.count()).select_from(orders).where(orders.c.subscription_id.is_(None))
    )
    if orphans:
        # The portal never deletes a subscription, so this needs a person to look at the data.
        raise RuntimeError(
            f"{orphans} order(s) belong to no subscription (neither by employee nor by msisdn); "
            "give them one (orders.subscription_id) and run the migration again"
        )


def _resolve_duplicates(connection: sa.Connection) -> None:
    now = datetime.now(UTC)
    rows = connection.execute(
        sa.select(
            orders.c.id,
            orders.c.subscription_id,
            orders.c.product_code,
            orders.c.kind,
            orders.c.billing,
            orders.c.status,
            orders.c.created_at,
        )
        .where(orders.c.status != "failed", orders.c.ended_at.is_(None))
        .order_by(orders.c.created_at, orders.c.id)
    ).all()
    activated_by = {
        (r.subscription_id, r.product_code): r.order_id
        for r in connection.execute(sa.select(active_services)).all()
        if r.order_id is not None
    }
    addons: dict[tuple[object, str], list[sa.Row]] = {}
    open_ones: dict[tuple[object, str], list[sa.Row]] = {}
    for row in rows:
        if row.kind == "addon" and row.billing == "monthly":
            addons.setdefault((row.subscription_id, row.product_code), []).append(row)
        elif row.status in ("received", "submitted") and row.kind == "plan":
            open_ones.setdefault((row.subscription_id, "plan"), []).append(row)
        elif row.status in ("received", "submitted") and row.kind in ("sim_order", "sim_activation"):
            open_ones.setdefault((row.subscription_id, row.product_code), []).append(row)

    for key, group in addons.items():
        if len(group) < 2:
            continue
        completed = [r for r in group if r.status == "completed"]
        holder = next((r for r in group if r.id == activated_by.get(key)), None) or (completed or group)[0]
        ended = [r.id for r in group if r.id != holder.id]
        connection.execute(orders.update().where(orders.c.id.in_(ended)).values(ended_at=now, updated_at=now))

    for group in open_ones.values():
        if len(group) < 2:
            continue
        older = [r.id for r in group[:-1]]  # oldest first: the last one is the newest
        connection.execute(
            orders.update()
            .where(orders.c.id.in_(older))
            .values(status="failed", failure_reason=SUPERSEDED, updated_at=now)
        )


def downgrade() -> None:
    """Downgrade schema."""
    for name, _columns, where in reversed(INDEXES):
        op.drop_index(name, table_name='orders', postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_orders_subscription_id_subscriptions'), type_='foreignkey')
        batch_op.drop_column('ended_at')
        batch_op.drop_column('carrier_state_at')
        batch_op.drop_column('expected_completion_at')
        batch_op.drop_column('carrier_state')
        batch_op.drop_column('failure_code')
        batch_op.drop_column('subscription_id')
