"""Baseline: sessions with owners, messages, favourites and own personas.

Idempotent, so that a database made before Alembic managed the schema reaches the baseline
too: missing tables are created, a single-user database's sessions get an owner column (its
chats become the local user's, ""), and missing indexes are added.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    tables = set(sa.inspect(bind).get_table_names())
    if "chat_sessions" not in tables:
        op.create_table(
            "chat_sessions",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("owner", sa.String(320), nullable=False, server_default=""),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("persona", sa.String(300)),
            sa.Column("slots", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
    elif "owner" not in {c["name"] for c in sa.inspect(bind).get_columns("chat_sessions")}:
        op.add_column("chat_sessions", sa.Column("owner", sa.String(320), nullable=False, server_default=""))
    if "message_store" not in tables:
        op.create_table(
            "message_store",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("session_id", sa.Text),
            sa.Column("message", sa.Text),
        )
    if "persona_favourites" not in tables:
        op.create_table(
            "persona_favourites",
            sa.Column("owner", sa.String(320), primary_key=True),
            sa.Column("persona_key", sa.String(300), primary_key=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "own_personas" not in tables:
        op.create_table(
            "own_personas",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("owner", sa.String(320), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("name_key", sa.String(200), nullable=False),
            sa.Column("emoji", sa.String(32), nullable=False),
            sa.Column("prompt", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.UniqueConstraint("owner", "name_key", name="uq_own_personas_owner_name"),
        )
    inspector = sa.inspect(bind)
    if "ix_chat_sessions_owner" not in {i["name"] for i in inspector.get_indexes("chat_sessions")}:
        op.create_index("ix_chat_sessions_owner", "chat_sessions", ["owner"])
    if "ix_message_store_session_id" not in {i["name"] for i in inspector.get_indexes("message_store")}:
        op.create_index("ix_message_store_session_id", "message_store", ["session_id"], mysql_length={"session_id": 64})


def downgrade() -> None:
    for table in ("own_personas", "persona_favourites", "message_store", "chat_sessions"):
        op.drop_table(table)
