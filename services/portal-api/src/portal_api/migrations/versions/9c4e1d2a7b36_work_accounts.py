"""work accounts: an employee bound to the identity provider's (iss, sub)

Revision ID: 9c4e1d2a7b36
Revises: c2e7a91d4f60
Create Date: 2026-12-01 12:00:00.000000

"Bruk jobbkonto" finds an employee by the provider's verified e-mail only the first time; the
account is then bound here, and from then on `(issuer, subject)` names the employee, whatever
e-mail the account carries later. One account per employee and issuer; removing the employee
removes the binding.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '9c4e1d2a7b36'
down_revision: Union[str, Sequence[str], None] = 'c2e7a91d4f60'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'work_accounts',
        sa.Column('issuer', sa.String(length=1000), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('employee_id', sa.Uuid(), nullable=False),
        sa.Column('bound_email', sa.String(length=320), nullable=False),
        sa.Column('bound_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['employee_id'], ['employees.id'],
            name=op.f('fk_work_accounts_employee_id_employees'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('issuer', 'subject', name=op.f('pk_work_accounts')),
        sa.UniqueConstraint('employee_id', 'issuer', name=op.f('uq_work_accounts_employee_id')),
    )


def downgrade() -> None:
    op.drop_table('work_accounts')
