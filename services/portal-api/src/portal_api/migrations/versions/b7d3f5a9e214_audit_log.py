"""audit log of administrators' changes

Revision ID: b7d3f5a9e214
Revises: 7d3f5a9c2e18
Create Date: 2026-12-01 14:45:00

audit_log: one row per administrator's change to an employee (portal_api.admin), written in the
change's own transaction: who (actor_employee_id), whom (subject_employee_id), when (at), what
(action) and the changed fields before and after (JSON).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'b7d3f5a9e214'
down_revision: Union[str, Sequence[str], None] = '7d3f5a9c2e18'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.Uuid(), nullable=False),
    sa.Column('actor_employee_id', sa.Uuid(), nullable=False),
    sa.Column('subject_employee_id', sa.Uuid(), nullable=False),
    sa.Column('action', sa.String(length=50), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_employee_id'], ['employees.id'], name=op.f('fk_audit_log_actor_employee_id_employees')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_audit_log_company_id_companies')),
    sa.ForeignKeyConstraint(['subject_employee_id'], ['employees.id'], name=op.f('fk_audit_log_subject_employee_id_employees')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_company_id_id', 'audit_log', ['company_id', 'id'], unique=False)
    op.create_index(op.f('ix_audit_log_subject_employee_id'), 'audit_log', ['subject_employee_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_audit_log_subject_employee_id'), table_name='audit_log')
    op.drop_index('ix_audit_log_company_id_id', table_name='audit_log')
    op.drop_table('audit_log')
