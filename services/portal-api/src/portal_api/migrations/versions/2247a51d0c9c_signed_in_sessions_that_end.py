"""signed-in sessions that end

Revision ID: 2247a51d0c9c
Revises: 9c4e1d2a7b36
Create Date: 2026-12-01 11:36:23.769585

web_sessions: one row per signed-in session (portal_api.auth.sessions), keyed by the SHA-256 of
the token the cookie carries, never the token itself. Sessions signed in before this revision
lived in the cookie alone; those cookies carry no token, so everyone signs in once more.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '2247a51d0c9c'
down_revision: Union[str, Sequence[str], None] = '9c4e1d2a7b36'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('web_sessions',
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('employee_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_web_sessions_employee_id_employees'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sessions'))
    )
    op.create_index(op.f('ix_web_sessions_employee_id'), 'web_sessions', ['employee_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_web_sessions_employee_id'), table_name='web_sessions')
    op.drop_table('web_sessions')
