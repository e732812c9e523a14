"""deductions: the portal's read model of the payroll-worker's deduction lines

Revision ID: e5a1c3d7f902
Revises: b7d3f5a9e214
Create Date: 2026-12-01 15:30:00

deductions holds one row per deduction line the payroll-worker recorded (PayrollDeductionRecorded)
or reversed (PayrollDeductionReversed), keyed by the line's stable id, so a redelivered event adds
nothing. Mine lønnstrekk reads it by employee and period, the administrator's Lønnstrekk by
company and period.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'e5a1c3d7f902'
down_revision: Union[str, Sequence[str], None] = 'b7d3f5a9e214'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'deductions',
        sa.Column('line_id', sa.Uuid(), nullable=False),
        sa.Column('company_id', sa.Uuid(), nullable=False),
        sa.Column('employee_id', sa.Uuid(), nullable=False),
        sa.Column('employee_number', sa.String(length=50), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('product_code', sa.String(length=50), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('wage_type', sa.String(length=20), nullable=False),
        sa.Column('amount_ore', sa.BigInteger(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('consent_id', sa.Uuid(), nullable=True),
        sa.Column('text', sa.String(length=200), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reverses_line_id', sa.Uuid(), nullable=True),
        sa.Column('reversal_reason', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('line_id', name=op.f('pk_deductions')),
    )
    op.create_index('ix_deductions_company_period', 'deductions', ['company_id', 'period'], unique=False)
    op.create_index('ix_deductions_employee_period', 'deductions', ['employee_id', 'period'], unique=False)
    op.create_index(op.f('ix_deductions_order_id'), 'deductions', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_deductions_order_id'), table_name='deductions')
    op.drop_index('ix_deductions_employee_period', table_name='deductions')
    op.drop_index('ix_deductions_company_period', table_name='deductions')
    op.drop_table('deductions')
