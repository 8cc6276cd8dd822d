"""The chat store: one database for every user's chats (sessions and their messages), their
favourite personas and own personas, with export and import.

`ChatStore(url)` opens any SQLAlchemy URL (HISTORY_DB_URL; by default a SQLite file in
STORE_DIR, in WAL mode so that two processes can write at once; PostgreSQL needs the
`postgres` extra), brings its schema to the newest revision (Alembic), and offers three parts:
`sessions` (chats and messages), `personas` (favourites and own personas) and `transfer`
(export and import). Messages go through LangChain's SQLChatMessageHistory.
"""

from __future__ import annotations

import json
import uuid
import warnings
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, messages_from_dict
from sqlalchemy import MetaData, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.orm import DeclarativeBase

from assistant.chat import migrate
from assistant.chat.personas import OwnPersonas
from assistant.chat.schema import (
    KEY_MAX,
    MESSAGES_TABLE,
    NAME_MAX,
    NEW_CHAT,
    OWN_PERSONA_PREFIX,
    ChatSession,
    HistoryError,
    Role,
    as_utc,
    check_user,
    clean_name,
    dump_message,
    messages_table,
    not_found,
    now,
    sessions,
)
from assistant.chat.transfer import Transfer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_community.chat_message_histories.sql import BaseMessageConverter

TITLE_WORDS = 8  # a chat named by its first question takes at most this many words


class _MessagesBase(DeclarativeBase):
    """The message table alone: LangChain's history checks that its table exists when it is
    made, and so checks this one table (the migrations made it)."""

    metadata = MetaData()


class _StoredMessage(_MessagesBase):
    __table__ = messages_table.to_metadata(_MessagesBase.metadata)


class _Converter(BaseMessageConverter):
    """LangChain's own row format (the message dict as JSON), on the table of the schema."""

    def from_sql_model(self, sql_message: Any) -> BaseMessage:
        return messages_from_dict([json.loads(sql_message.message)])[0]

    def to_sql_model(self, message: BaseMessage, session_id: str) -> Any:
        return _StoredMessage(session_id=session_id, message=dump_message(message))

    def get_sql_model_class(self) -> Any:
        return _StoredMessage


_CONVERTER = _Converter()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and a writer of another process work at once; with it, NORMAL sync is safe."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and it runs in WAL mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # timeout: a writer waits up to 30 s for another process's write, instead of failing
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(url, pool_pre_ping=True)


def chat_title(question: str) -> str:
    """A chat's name from its first question: its first words, on one line."""
    words = " ".join(str(question).split()).split(" ")
    title = " ".join(words[:TITLE_WORDS])
    return clean_name(title + ("…" if len(words) > TITLE_WORDS else "")) or NEW_CHAT


class Sessions:
    """Chats of every user and their messages."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def list(self, user: str) -> list[ChatSession]:
        """Newest activity first."""
        query = (
            select(sessions)
            .where(sessions.c.owner == check_user(user))
            .order_by(sessions.c.updated_at.desc(), sessions.c.created_at.desc(), sessions.c.id)
        )
        with self.engine.connect() as conn:
            return [_session(r) for r in conn.execute(query)]

    def get(self, session_id: str, user: str) -> ChatSession:
        with self.engine.connect() as conn:
            return _session(self.owned(conn, session_id, user))

    def create(self, user: str, name: str | None = None) -> ChatSession:
        """A new chat; without a name, its first question names it."""
        moment = now()
        named = bool(clean_name(name or ""))
        session = ChatSession(
            id=uuid.uuid4().hex,
            name=clean_name(name or "") or NEW_CHAT,
            user=check_user(user),
            created_at=moment,
            updated_at=moment,
            named=named,
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    id=session.id, owner=user, name=session.name, persona=None, slots="{}",
                    created_at=moment, updated_at=moment, named=named,
                )
            )  # fmt: skip
        return session

    def rename(self, session_id: str, name: str, user: str) -> None:
        name = clean_name(name)
        if not name:
            raise HistoryError("A chat session needs a name.")
        self.update(session_id, user, name=name, named=True)

    def set_persona(self, session_id: str, persona_key: str | None, slots: dict[str, str] | None, user: str) -> None:
        """A persona of your own must be yours; the notes' personas are everyone's."""
        if persona_key is not None:
            persona_key = str(persona_key)
            if not persona_key or len(persona_key) > KEY_MAX:
                raise HistoryError("That is not a persona.")
        values = {str(k): str(v) for k, v in (slots or {}).items()}
        with self.engine.begin() as conn:
            if persona_key is not None and persona_key.startswith(OWN_PERSONA_PREFIX):
                OwnPersonas.row(conn, persona_key, user)
            self.update(session_id, user, conn=conn, persona=persona_key, slots=json.dumps(values, ensure_ascii=False))

    def delete(self, session_id: str, user: str) -> None:
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(sessions).where(sessions.c.id == session_id, sessions.c.owner == check_user(user))
            )
            if gone.rowcount == 0:
                raise not_found()
            conn.execute(delete(messages_table).where(messages_table.c.session_id == session_id))

    def touch(self, session_id: str, user: str) -> None:
        self.update(session_id, user)

    # ---------------------------------------------------------------- messages
    def messages(self, session_id: str, user: str) -> SQLChatMessageHistory:
        """LangChain's history of one session, once the session is known to be the user's."""
        self.get(session_id, user)
        return SQLChatMessageHistory(
            session_id=session_id,
            connection=self.engine,
            table_name=MESSAGES_TABLE,
            custom_message_converter=_CONVERTER,
        )

    def add_user(self, session_id: str, text: str, user: str, title: str | None = None) -> None:
        """Saved before the model is called, so a failed call never loses the question. The first
        question of a chat the user has not named names it: by `title` when given (the service
        knows what a "/" command or a persona request is called; "" names nothing), else its words."""
        self.add_message(session_id, "user", text, user, title=title)

    def add_assistant(self, session_id: str, text: str, user: str, details: dict[str, Any] | None = None) -> None:
        """`details` (sources, mode, errors…) ride along in the message's additional_kwargs."""
        self.add_message(session_id, "assistant", text, user, details)

    def add_message(
        self,
        session_id: str,
        role: Role,
        text: str,
        user: str,
        details: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> None:
        """Ownership check, touch and insert in one transaction: the session's row lock (or
        SQLite's write lock) orders concurrent writers, and a refused write leaves nothing."""
        message: BaseMessage = (
            HumanMessage(text)
            if role == "user"
            else AIMessage(text, additional_kwargs={"details": dict(details or {})})
        )
        with self.engine.begin() as conn:
            row = self.owned(conn, session_id, user)
            values: dict[str, Any] = {}
            name = chat_title(text) if title is None else clean_name(title)
            if role == "user" and not row.named and name:
                values = {"name": name, "named": True}
            self.update(session_id, user, conn=conn, **values)
            conn.execute(insert(messages_table).values(session_id=session_id, message=dump_message(message)))

    def count_messages(self, session_id: str, user: str | None = None) -> int:
        """Messages in a session; with `user`, only if the session is theirs."""
        with self.engine.connect() as conn:
            if user is not None:
                self.owned(conn, session_id, user)
            return conn.execute(
                select(func.count()).select_from(messages_table).where(messages_table.c.session_id == session_id)
            ).scalar_one()

    # ---------------------------------------------------------------- internals
    @staticmethod
    def owned(conn: Connection, session_id: str, user: str) -> Row:
        if not isinstance(session_id, str):
            raise not_found()
        row = conn.execute(
            select(sessions).where(sessions.c.id == session_id, sessions.c.owner == check_user(user))
        ).first()
        if row is None:
            raise not_found()
        return row

    def update(self, session_id: str, user: str, conn: Connection | None = None, **values: Any) -> None:
        """Update the user's session (always its updated_at), or refuse as if it did not exist."""
        if not isinstance(session_id, str):
            raise not_found()
        statement = (
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.owner == check_user(user))
            .values(updated_at=now(), **values)
        )
        if conn is None:
            with self.engine.begin() as own:
                result = own.execute(statement)
        else:
            result = conn.execute(statement)
        if result.rowcount == 0:
            raise not_found()


def _session(row: Row) -> ChatSession:
    try:
        slots = json.loads(row.slots or "{}")
    except ValueError:
        slots = {}
    return ChatSession(
        id=row.id,
        name=row.name,
        user=row.owner,
        persona=row.persona,
        slots=slots if isinstance(slots, dict) else {},
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        named=bool(row.named),
    )


class ChatStore:
    """All chat data of all users in one database; every method takes the user it acts for."""

    def __init__(self, url: str):
        self.url = url
        self.engine = open_engine(url)
        migrate.upgrade(self.engine)
        self.sessions = Sessions(self.engine)
        self.personas = OwnPersonas(self.engine)
        self.transfer = Transfer(self.sessions, self.personas)


__all__ = ["NAME_MAX", "ChatSession", "ChatStore", "HistoryError", "Sessions", "chat_title"]
