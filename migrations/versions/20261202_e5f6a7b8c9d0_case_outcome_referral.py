"""case outcome and referral: cases.outcome, cases.referred_to, cases.referral_ref

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-12-02 18:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'e5f6a7b8c9d0'
down_revision: str | None = 'd4e5f6a7b8c9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('referred_to', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('referral_ref', sa.String(length=64), nullable=True))
    # Cases closed before this column: their outcome is on the timeline.
    op.execute(
        "UPDATE cases SET outcome = (SELECT json_extract(detail, '$.outcome') FROM case_events"
        " WHERE case_events.case_id = cases.id AND kind = 'outcome'"
        " ORDER BY case_events.id DESC LIMIT 1)"
        if op.get_bind().dialect.name == "sqlite"
        else "UPDATE cases SET outcome = (SELECT detail::json->>'outcome' FROM case_events"
        " WHERE case_events.case_id = cases.id AND kind = 'outcome'"
        " ORDER BY case_events.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('referral_ref')
        batch_op.drop_column('referred_to')
        batch_op.drop_column('outcome')
