"""case owner: cases.owner_id (the officer who owns the case)

Revision ID: c17a0e1d2b3f
Revises: a2683b0b0976
Create Date: 2026-12-02 12:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c17a0e1d2b3f'
down_revision: str | None = 'a2683b0b0976'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_owner_id'), ['owner_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_cases_owner_id_staff_users'),
            'staff_users',
            ['owner_id'],
            ['id'],
            ondelete='SET NULL',
        )


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cases_owner_id_staff_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_cases_owner_id'))
        batch_op.drop_column('owner_id')
