"""The chat history's tables and records, and the helpers every part of the store shares.

Every row carries its owner and every query filters by it, so no user sees or changes
another's data, not even with a forged id. `user` is the signed-in user's id; "" is the one
local user when sign-in is off. The schema is created and upgraded by Alembic (`migrate.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from langchain_core.messages import BaseMessage, message_to_dict
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from assistant.core.personas import ACT_AS
from assistant.core.text import CONTROL

MESSAGES_TABLE: Final = "message_store"
EXPORT_FORMAT: Final = "notes-assistant-session/1"
PERSONAS_FORMAT: Final = "notes-assistant-personas/1"
MAX_IMPORT_BYTES: Final = 5 * 1024 * 1024
OWN_PERSONA_PREFIX: Final = "mine-"
NAME_MAX: Final = 200  # session and persona names are cut here
KEY_MAX: Final = 300  # persona keys: "Name@line" for the notes' personas, "mine-<hex>" for your own
NEW_CHAT: Final = "New chat"  # a chat's name until its first question names it

Role = Literal["user", "assistant"]

metadata = MetaData()
sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(320), nullable=False, default="", server_default=""),
    Column("name", String(NAME_MAX), nullable=False),
    Column("persona", String(KEY_MAX)),  # a persona key, or NULL
    Column("slots", Text, nullable=False, default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # True once the user named the chat; until then its first question names it.
    Column("named", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_chat_sessions_owner", "owner"),
)
# The same columns LangChain's SQLChatMessageHistory creates, plus the index it lacks.
messages_table = Table(
    MESSAGES_TABLE,
    metadata,
    Column("id", Integer, primary_key=True),
    Column("session_id", Text),
    Column("message", Text),
    Index("ix_message_store_session_id", "session_id", mysql_length=64),
)
favourites_table = Table(
    "persona_favourites",
    metadata,
    Column("owner", String(320), primary_key=True),
    Column("persona_key", String(KEY_MAX), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
own_personas_table = Table(
    "own_personas",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(320), nullable=False),
    Column("name", String(NAME_MAX), nullable=False),
    Column("name_key", String(NAME_MAX), nullable=False),  # casefolded: names are unique per owner
    Column("emoji", String(32), nullable=False, default=""),
    Column("prompt", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("owner", "name_key", name="uq_own_personas_owner_name"),
)


class HistoryError(ValueError):
    """What the user did cannot be done: the message is meant for them."""


@dataclass
class ChatSession:
    id: str
    name: str
    user: str = ""
    persona: str | None = None
    slots: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    named: bool = False  # named by the user (else its first question names it)


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def dump_message(message: BaseMessage) -> str:
    # default=str: a detail that JSON cannot hold must not lose the answer it came with
    return json.dumps(message_to_dict(message), default=str)


def check_user(user: str) -> str:
    if not isinstance(user, str):
        raise TypeError(f"user must be a string, got {type(user).__name__}")
    return user


def clean_name(name: str) -> str:
    """A name on one line, without control characters (a bell typed in a message names no chat)."""
    return " ".join(CONTROL.sub(" ", str(name)).split())[:NAME_MAX]


def persona_name(name: str) -> str:
    """Names as the notes' personas have them: without a leading "Act as a"."""
    return clean_name(ACT_AS.sub("", " ".join(str(name).split())))


def name_key(name: str) -> str:
    return name.casefold()


def not_found() -> HistoryError:
    """One message, without the id, for a missing session and another user's: ids cannot be probed."""
    return HistoryError("There is no such chat session: it may have been deleted.")


def persona_not_found(persona_id: object) -> HistoryError:
    return HistoryError(f"There is no persona {str(persona_id)[:80]!r} of yours.")
