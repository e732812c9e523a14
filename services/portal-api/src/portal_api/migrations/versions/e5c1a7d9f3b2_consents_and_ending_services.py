"""consents, the order's snapshot fields, and ending a monthly add-on

Revision ID: e5c1a7d9f3b2
Revises: e5a1c3d7f902
Create Date: 2026-12-01 15:20:00

consents: the employee's acceptance of a salary deduction (arbeidsmiljøloven § 14-15), written
with the order. orders gains what its OrderPlaced snapshot said: action (add, modify for a plan
change, delete for "Avslutt"; existing plan changes become modify), ends_order_id, product_name,
wage_type and consent_id. An order ending an add-on no longer holds the add-on's place
(uq_orders_open_monthly_addon excludes action delete); uq_orders_open_service_end allows one open
"Avslutt" per subscription and product.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'e5c1a7d9f3b2'
down_revision: Union[str, Sequence[str], None] = 'e5a1c3d7f902'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_MONTHLY_ADDON_WHERE = "kind = 'addon' AND billing = 'monthly' AND status != 'failed' AND ended_at IS NULL"
MONTHLY_ADDON_WHERE = (
    "kind = 'addon' AND action != 'delete' AND billing = 'monthly' AND status != 'failed' AND ended_at IS NULL"
)
SERVICE_END_WHERE = "action = 'delete' AND status IN ('received', 'submitted')"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('consents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('company_id', sa.Uuid(), nullable=False),
    sa.Column('employee_id', sa.Uuid(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('amount_ore', sa.Integer(), nullable=False),
    sa.Column('billing', sa.String(length=10), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_consents_company_id_companies')),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_consents_employee_id_employees')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    op.create_index(op.f('ix_consents_employee_id'), 'consents', ['employee_id'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('action', sa.String(length=10), server_default=sa.text("'add'"), nullable=False))
        batch_op.add_column(sa.Column('ends_order_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('product_name', sa.String(length=100), server_default=sa.text("''"), nullable=False))
        batch_op.add_column(sa.Column('wage_type', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('consent_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_orders_consent_id_consents'), 'consents', ['consent_id'], ['id'])
    op.execute("UPDATE orders SET action = 'modify' WHERE kind = 'plan'")
    op.drop_index('uq_orders_open_monthly_addon', table_name='orders')
    op.create_index(
        'uq_orders_open_monthly_addon', 'orders', ['subscription_id', 'product_code'], unique=True,
        postgresql_where=sa.text(MONTHLY_ADDON_WHERE), sqlite_where=sa.text(MONTHLY_ADDON_WHERE),
    )
    op.create_index(
        'uq_orders_open_service_end', 'orders', ['subscription_id', 'product_code'], unique=True,
        postgresql_where=sa.text(SERVICE_END_WHERE), sqlite_where=sa.text(SERVICE_END_WHERE),
    )


def downgrade() -> None:
    """Downgrade schema: the orders ending a service go, with the consents."""
    op.drop_index('uq_orders_open_service_end', table_name='orders')
    op.drop_index('uq_orders_open_monthly_addon', table_name='orders')
    op.execute("DELETE FROM orders WHERE action = 'delete'")
    op.create_index(
        'uq_orders_open_monthly_addon', 'orders', ['subscription_id', 'product_code'], unique=True,
        postgresql_where=sa.text(OLD_MONTHLY_ADDON_WHERE), sqlite_where=sa.text(OLD_MONTHLY_ADDON_WHERE),
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_orders_consent_id_consents'), type_='foreignkey')
        batch_op.drop_column('consent_id')
        batch_op.drop_column('wage_type')
        batch_op.drop_column('product_name')
        batch_op.drop_column('ends_order_id')
        batch_op.drop_column('action')
    op.drop_index(op.f('ix_consents_employee_id'), table_name='consents')
    op.drop_table('consents')
