"""employee phone verification state

Revision ID: 4e8b1f0c6a93
Revises: 2247a51d0c9c
Create Date: 2026-12-01 14:40:00

employees.self_service_allowed is the administrator's switch; phone_verified_at is when the
employee confirmed the number they have now (those already active are taken as confirmed at the
upgrade); verification_failures counts wrong one-time codes in a row.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '4e8b1f0c6a93'
down_revision: Union[str, Sequence[str], None] = '2247a51d0c9c'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('employees') as batch:
        batch.add_column(sa.Column('self_service_allowed', sa.Boolean(), server_default=sa.text('true'), nullable=False))
        batch.add_column(sa.Column('phone_verified_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('verification_failures', sa.Integer(), server_default=sa.text('0'), nullable=False))
    employees = sa.table('employees', sa.column('self_service_active', sa.Boolean()), sa.column('phone_verified_at', sa.DateTime(timezone=True)))
    op.execute(employees.update().where(employees.c.self_service_active == sa.true()).values(phone_verified_at=sa.func.current_timestamp()))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('employees') as batch:
        batch.drop_column('verification_failures')
        batch.drop_column('phone_verified_at')
        batch.drop_column('self_service_allowed')
