"""the main SIM is marked in data (sim_cards.is_main), not found by its label

Revision ID: c2e7a91d4f60
Revises: 73803c7ae579
Create Date: 2026-12-01 12:00:00.000000

sim_cards gets is_main (NOT NULL, default false) and a partial unique index: at most one main SIM
per subscription (uq_sim_cards_main, on SQLite and PostgreSQL alike).

Until now the code took the SIM labelled "Sim hovedkort" as the main one, and the page, when there
was none, the subscription's first SIM. The data migration marks, for each subscription that has
SIM cards, the one the page showed as main: the earliest labelled "Sim hovedkort", else the
earliest of all.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'c2e7a91d4f60'
down_revision: Union[str, Sequence[str], None] = '73803c7ae579'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_MAIN_LABEL = "Sim hovedkort"
MAIN_WHERE = "is_main"

sim_cards = sa.table(
    "sim_cards",
    sa.column("id", sa.Uuid()),
    sa.column("subscription_id", sa.Uuid()),
    sa.column("label", sa.String()),
    sa.column("is_main", sa.Boolean()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('sim_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_main', sa.Boolean(), server_default=sa.false(), nullable=False))

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(sim_cards.c.id, sim_cards.c.subscription_id, sim_cards.c.label).order_by(
            sim_cards.c.created_at, sim_cards.c.id
        )
    ).all()
    main: dict[object, object] = {}
    for row in rows:  # oldest first
        if row.label == OLD_MAIN_LABEL:
            main.setdefault(row.subscription_id, row.id)
    for row in rows:
        main.setdefault(row.subscription_id, row.id)
    if main:
        connection.execute(sim_cards.update().where(sim_cards.c.id.in_(list(main.values()))).values(is_main=True))

    op.create_index(
        'uq_sim_cards_main',
        'sim_cards',
        ['subscription_id'],
        unique=True,
        postgresql_where=sa.text(MAIN_WHERE),
        sqlite_where=sa.text(MAIN_WHERE),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(
        'uq_sim_cards_main', table_name='sim_cards', postgresql_where=sa.text(MAIN_WHERE), sqlite_where=sa.text(MAIN_WHERE)
    )
    with op.batch_alter_table('sim_cards', schema=None) as batch_op:
        batch_op.drop_column('is_main')
