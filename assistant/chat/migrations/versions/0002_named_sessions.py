"""Sessions know whether the user named them: until then, the first question names the chat.

Chats that exist already keep their names (they count as named).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("named", sa.Boolean, nullable=False, server_default=sa.true()))
    with op.batch_alter_table("chat_sessions") as batch:
        batch.alter_column("named", server_default=sa.false(), existing_type=sa.Boolean, existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_column("named")
