"""phone verifications: one-time codes by SMS, and the codes refused

Revision ID: 7d3f5a9c2e18
Revises: 4e8b1f0c6a93
Create Date: 2026-12-01 15:00:00

verifications holds each code an employee asked for, as its HMAC only (never the code), with the
number it went to, its expiry, tries, state and how far the SMS got; at most one pending code per
employee (a partial unique index). verification_refusals keeps one row per code the portal
refused to send (a number abroad, the company's daily SMS budget spent) for the administrator.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7d3f5a9c2e18'
down_revision: Union[str, Sequence[str], None] = '4e8b1f0c6a93'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'verifications',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('employee_id', sa.Uuid(), nullable=False),
        sa.Column('company_id', sa.Uuid(), nullable=False),
        sa.Column('msisdn', sa.String(length=15), nullable=False),
        sa.Column('code_hmac', sa.LargeBinary(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('delivery_status', sa.String(length=20), nullable=False),
        sa.Column('delivery_reason', sa.Text(), nullable=True),
        sa.Column('delivery_reason_code', sa.String(length=20), nullable=True),
        sa.Column('delivery_updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['company_id'], ['companies.id'], name=op.f('fk_verifications_company_id_companies')
        ),
        sa.ForeignKeyConstraint(
            ['employee_id'], ['employees.id'],
            name=op.f('fk_verifications_employee_id_employees'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_verifications')),
    )
    op.create_index(op.f('ix_verifications_employee_id'), 'verifications', ['employee_id'])
    op.create_index('ix_verifications_msisdn_created', 'verifications', ['msisdn', 'created_at'])
    op.create_index('ix_verifications_company_created', 'verifications', ['company_id', 'created_at'])
    op.create_index(
        'uq_verifications_pending', 'verifications', ['employee_id'], unique=True,
        postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        'verification_refusals',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('company_id', sa.Uuid(), nullable=False),
        sa.Column('employee_id', sa.Uuid(), nullable=False),
        sa.Column('msisdn', sa.String(length=15), nullable=False),
        sa.Column('reason', sa.String(length=30), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['company_id'], ['companies.id'], name=op.f('fk_verification_refusals_company_id_companies')
        ),
        sa.ForeignKeyConstraint(
            ['employee_id'], ['employees.id'],
            name=op.f('fk_verification_refusals_employee_id_employees'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_refusals')),
    )
    op.create_index(
        'ix_verification_refusals_company_created', 'verification_refusals', ['company_id', 'created_at']
    )


def downgrade() -> None:
    op.drop_index('ix_verification_refusals_company_created', table_name='verification_refusals')
    op.drop_table('verification_refusals')
    op.drop_index('uq_verifications_pending', table_name='verifications')
    op.drop_index('ix_verifications_company_created', table_name='verifications')
    op.drop_index('ix_verifications_msisdn_created', table_name='verifications')
    op.drop_index(op.f('ix_verifications_employee_id'), table_name='verifications')
    op.drop_table('verifications')
