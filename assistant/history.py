"""Chat sessions, favourite personas and your own personas in SQL, kept apart per user.

Messages go through LangChain's SQLChatMessageHistory (table message_store); beside them are
tables of sessions (name, persona, slot values), favourites and personas of your own. Every
row carries its owner and every query filters by it, so no user sees or changes another's
data, not even with a forged id. `user` is the signed-in user's id; "" is the one local user
when sign-in is off.

Any SQLAlchemy URL works (HISTORY_DB_URL); the default is a SQLite file in STORE_DIR, in WAL
mode so that two processes can write at once. PostgreSQL needs the `postgres` extra
(psycopg 3): `postgresql+psycopg://user:password@host:5432/dbname`.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    message_to_dict,
    messages_from_dict,
    messages_to_dict,
)
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase

from assistant.personas import ACT_AS, Persona, make_persona

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_community.chat_message_histories.sql import BaseMessageConverter

MESSAGES_TABLE: Final = "message_store"
EXPORT_FORMAT: Final = "notes-assistant-session/1"
PERSONAS_FORMAT: Final = "notes-assistant-personas/1"
MAX_IMPORT_BYTES: Final = 5 * 1024 * 1024
OWN_PERSONA_PREFIX: Final = "mine-"
NAME_MAX = 200  # session and persona names are cut here
KEY_MAX = 300  # persona keys: "Name@line" for the notes' personas, "mine-<hex>" for your own

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


class _Base(DeclarativeBase):
    metadata = metadata


class _StoredMessage(_Base):
    __table__ = messages_table


class _Converter(BaseMessageConverter):
    """LangChain's own row format (the message dict as JSON), on the table above."""

    def from_sql_model(self, sql_message: Any) -> BaseMessage:
        return messages_from_dict([json.loads(sql_message.message)])[0]

    def to_sql_model(self, message: BaseMessage, session_id: str) -> Any:
        return _StoredMessage(session_id=session_id, message=_dump_message(message))

    def get_sql_model_class(self) -> Any:
        return _StoredMessage


_CONVERTER = _Converter()


class _History(SQLChatMessageHistory):
    """The ChatStore made the table; LangChain's create_all on every instance would only
    cost a query and race with another process creating it."""

    def _create_table_if_not_exists(self) -> None:
        self._table_created = True


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _dump_message(message: BaseMessage) -> str:
    # default=str: a detail that JSON cannot hold must not lose the answer it came with
    return json.dumps(message_to_dict(message), default=str)


def _not_found() -> HistoryError:
    """One message, without the id, for a missing session and another user's: ids cannot be probed."""
    return HistoryError("There is no such chat session: it may have been deleted.")


def _persona_not_found(persona_id: object) -> HistoryError:
    return HistoryError(f"There is no persona {str(persona_id)[:80]!r} of yours.")


def _check_user(user: str) -> str:
    if not isinstance(user, str):
        raise TypeError(f"user must be a string, got {type(user).__name__}")
    return user


def _clean_name(name: str) -> str:
    return " ".join(str(name).split())[:NAME_MAX]


def _persona_name(name: str) -> str:
    """Names as the notes' personas have them: without a leading "Act as a"."""
    return _clean_name(ACT_AS.sub("", " ".join(str(name).split())))


def _name_key(name: str) -> str:
    return name.casefold()


def _insert_own_persona(conn: Connection, user: str, name: str, prompt: str, emoji: str, now: datetime) -> str:
    """A new persona of `user`'s own (the name already made unique); its id."""
    persona_id = f"{OWN_PERSONA_PREFIX}{uuid.uuid4().hex}"
    conn.execute(
        insert(own_personas_table).values(
            id=persona_id, owner=user, name=name, name_key=_name_key(name), emoji=emoji, prompt=prompt,
            created_at=now, updated_at=now,
        )
    )  # fmt: skip
    return persona_id


def _unique_name(name: str, taken: Collection[str], key: Callable[[str], str] = lambda s: s) -> str:
    """NAME, else "NAME (imported)", else "NAME (imported 2)", …: imports never overwrite."""
    if key(name) not in taken:
        return name
    n = 1
    while True:
        suffix = " (imported)" if n == 1 else f" (imported {n})"
        candidate = name[: NAME_MAX - len(suffix)].rstrip() + suffix
        if key(candidate) not in taken:
            return candidate
        n += 1


def _load_export(data: str | bytes, expected: str, what: str) -> dict:
    """Parse an uploaded export, refusing big files before reading them and non-exports clearly."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_IMPORT_BYTES:
        raise HistoryError(f"The file is larger than 5 MB ({len(raw) / 1024 / 1024:.1f} MB): it cannot be imported.")
    try:
        parsed = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HistoryError(f"The file is not {what} (it is not JSON text).") from exc
    if not isinstance(parsed, dict) or parsed.get("format") != expected:
        other = {EXPORT_FORMAT: "a chat session export", PERSONAS_FORMAT: "a personas export"}
        found = other.get(parsed.get("format")) if isinstance(parsed, dict) else None
        hint = f" It is {found}: import it there instead." if found else ""
        raise HistoryError(f"The file is not {what} (expected format {expected!r}).{hint}")
    return parsed


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and a writer of another process work at once; with it, NORMAL sync is safe."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class ChatStore:
    """All chat data of all users in one database; every method takes the user it acts for."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # timeout: a writer waits up to 30 s for another process's write, instead of failing
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_on_connect)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._create_schema()

    # ------------------------------------------------------------------ schema
    def _create_schema(self, attempts: int = 4) -> None:
        """Idempotent; when two processes start at once, the loser's CREATE fails and its
        retry finds the tables."""
        for attempt in range(attempts):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                self._upgrade()
                return
            except DBAPIError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _upgrade(self) -> None:
        """Databases of the single-user version: their sessions become the local user's ("")."""
        inspector = inspect(self.engine)
        if "owner" not in {c["name"] for c in inspector.get_columns("chat_sessions")}:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE chat_sessions ADD COLUMN owner VARCHAR(320) NOT NULL DEFAULT ''"))
            inspector = inspect(self.engine)
        for table, index in ((sessions, "ix_chat_sessions_owner"), (messages_table, "ix_message_store_session_id")):
            if index not in {i["name"] for i in inspector.get_indexes(table.name)}:
                next(i for i in table.indexes if i.name == index).create(self.engine, checkfirst=True)

    # ---------------------------------------------------------------- sessions
    def list_sessions(self, user: str) -> list[ChatSession]:
        """Newest activity first."""
        query = (
            select(sessions)
            .where(sessions.c.owner == _check_user(user))
            .order_by(sessions.c.updated_at.desc(), sessions.c.created_at.desc(), sessions.c.id)
        )
        with self.engine.connect() as conn:
            return [self._session(r) for r in conn.execute(query)]

    def get(self, session_id: str, user: str) -> ChatSession:
        with self.engine.connect() as conn:
            return self._session(self._owned(conn, session_id, user))

    def create(self, user: str, name: str | None = None) -> ChatSession:
        now = _now()
        session = ChatSession(
            id=uuid.uuid4().hex,
            name=_clean_name(name or "") or f"Chat {now:%Y-%m-%d %H:%M}",
            user=_check_user(user),
            created_at=now,
            updated_at=now,
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    id=session.id,
                    owner=user,
                    name=session.name,
                    persona=None,
                    slots="{}",
                    created_at=now,
                    updated_at=now,
                )
            )
        return session

    def rename(self, session_id: str, name: str, user: str) -> None:
        name = _clean_name(name)
        if not name:
            raise HistoryError("A chat session needs a name.")
        self._update(session_id, user, name=name)

    def set_persona(self, session_id: str, persona_key: str | None, slots: dict[str, str] | None, user: str) -> None:
        """A persona of your own must be yours; the notes' personas are everyone's."""
        if persona_key is not None:
            persona_key = str(persona_key)
            if not persona_key or len(persona_key) > KEY_MAX:
                raise HistoryError("That is not a persona.")
        values = {str(k): str(v) for k, v in (slots or {}).items()}
        with self.engine.begin() as conn:
            if persona_key is not None and persona_key.startswith(OWN_PERSONA_PREFIX):
                self._own_persona_row(conn, persona_key, user)
            self._update(session_id, user, conn=conn, persona=persona_key, slots=json.dumps(values, ensure_ascii=False))

    def delete(self, session_id: str, user: str) -> None:
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(sessions).where(sessions.c.id == session_id, sessions.c.owner == _check_user(user))
            )
            if gone.rowcount == 0:
                raise _not_found()
            conn.execute(delete(messages_table).where(messages_table.c.session_id == session_id))

    def touch(self, session_id: str, user: str) -> None:
        self._update(session_id, user)

    # ---------------------------------------------------------------- messages
    def messages(self, session_id: str, user: str) -> SQLChatMessageHistory:
        """LangChain's history of one session, once the session is known to be the user's."""
        self.get(session_id, user)
        return _History(
            session_id=session_id,
            connection=self.engine,
            table_name=MESSAGES_TABLE,
            custom_message_converter=_CONVERTER,
        )

    def add_user(self, session_id: str, text: str, user: str) -> None:
        """Saved before the model is called, so a failed call never loses the question."""
        self.add_message(session_id, "user", text, user)

    def add_assistant(self, session_id: str, text: str, user: str, details: dict[str, Any] | None = None) -> None:
        """`details` (sources, mode, errors…) ride along in the message's additional_kwargs."""
        self.add_message(session_id, "assistant", text, user, details)

    def add_message(
        self, session_id: str, role: Role, text: str, user: str, details: dict[str, Any] | None = None
    ) -> None:
        """Ownership check, touch and insert in one transaction: the session's row lock (or
        SQLite's write lock) orders concurrent writers, and a refused write leaves nothing."""
        message: BaseMessage = (
            HumanMessage(text)
            if role == "user"
            else AIMessage(text, additional_kwargs={"details": dict(details or {})})
        )
        with self.engine.begin() as conn:
            self._update(session_id, user, conn=conn)
            conn.execute(insert(messages_table).values(session_id=session_id, message=_dump_message(message)))

    def count_messages(self, session_id: str, user: str | None = None) -> int:
        """Messages in a session; with `user`, only if the session is theirs."""
        with self.engine.connect() as conn:
            if user is not None:
                self._owned(conn, session_id, user)
            return conn.execute(
                select(func.count()).select_from(messages_table).where(messages_table.c.session_id == session_id)
            ).scalar_one()

    # ---------------------------------------------------------- export / import
    def export_json(self, session_id: str, user: str) -> str:
        """The session and its messages; a persona of your own travels with it, so the
        chat keeps its persona when imported elsewhere."""
        session = self.get(session_id, user)
        data: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "name": session.name,
            "persona": session.persona,
            "slots": session.slots,
            "created_at": session.created_at.isoformat() if session.created_at else None,
            "messages": messages_to_dict(self.messages(session_id, user).messages),
        }
        if session.persona and session.persona.startswith(OWN_PERSONA_PREFIX):
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(own_personas_table).where(
                        own_personas_table.c.id == session.persona, own_personas_table.c.owner == user
                    )
                ).first()
            if row is not None:
                data["own_persona"] = {"name": row.name, "emoji": row.emoji, "prompt": row.prompt}
        return json.dumps(data, ensure_ascii=False, indent=1)

    def export_markdown(self, session_id: str, user: str) -> str:
        session = self.get(session_id, user)
        out = [f"# {session.name}", ""]
        if session.persona:
            out += [f"Persona: {self._persona_label(session.persona, user)}", ""]
        for message in self.messages(session_id, user).messages:
            who = "You" if isinstance(message, HumanMessage) else "Assistant"
            out += [f"**{who}:**", "", str(message.content), ""]
            details = message.additional_kwargs.get("details")
            sources = details.get("sources") if isinstance(details, dict) else None
            sources = [s for s in sources if isinstance(s, dict)] if isinstance(sources, list) else []
            for n, src in enumerate(sources, 1):
                where = f"{src.get('source')}:{src.get('first_line')}-{src.get('last_line')}"
                out.append(f"- [{n}] {src.get('breadcrumb')} ({where})")
            if sources:
                out.append("")
        return "\n".join(out).rstrip() + "\n"

    def import_json(self, data: str | bytes, user: str) -> ChatSession:
        """A new session of `user`, all or nothing; a name they already use gets " (imported)"."""
        _check_user(user)
        export = _load_export(data, EXPORT_FORMAT, "a chat session export")
        raw_messages = export.get("messages")
        if not isinstance(raw_messages, list) or not all(
            isinstance(m, dict) and m.get("type") in ("human", "ai") for m in raw_messages
        ):
            raise HistoryError("The export's messages cannot be read: each must be a question or an answer.")
        try:
            msgs = messages_from_dict(raw_messages)
        except (KeyError, TypeError, ValueError) as exc:
            raise HistoryError("The export holds a message that cannot be read.") from exc
        slots = export.get("slots") if isinstance(export.get("slots"), dict) else {}
        persona = export.get("persona") if isinstance(export.get("persona"), str) else None
        if persona is not None and not 0 < len(persona) <= KEY_MAX:
            persona = None
        now = _now()
        created = now
        if isinstance(export.get("created_at"), str):
            try:
                created = _utc(datetime.fromisoformat(export["created_at"])) or now
            except ValueError:
                pass
        with self.engine.begin() as conn:
            if persona is not None and persona.startswith(OWN_PERSONA_PREFIX):
                persona = self._import_own_persona(conn, persona, export.get("own_persona"), user)
            taken = set(conn.execute(select(sessions.c.name).where(sessions.c.owner == user)).scalars())
            name = _unique_name(_clean_name(str(export.get("name") or "")) or "Imported chat", taken)
            session_id = uuid.uuid4().hex
            conn.execute(
                insert(sessions).values(
                    id=session_id,
                    owner=user,
                    name=name,
                    persona=persona,
                    slots=json.dumps({str(k): str(v) for k, v in slots.items()}, ensure_ascii=False),
                    created_at=created,
                    updated_at=now,
                )
            )
            if msgs:
                conn.execute(
                    insert(messages_table), [{"session_id": session_id, "message": _dump_message(m)} for m in msgs]
                )
        return self.get(session_id, user)

    # -------------------------------------------------------------- favourites
    def favourites(self, user: str) -> set[str]:
        """Keys of the personas the user starred."""
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(favourites_table.c.persona_key).where(favourites_table.c.owner == _check_user(user))
                ).scalars()
            )

    def set_favourite(self, user: str, persona_key: str, on: bool) -> None:
        """Idempotent both ways; a persona of your own can only be starred by you."""
        persona_key = str(persona_key)
        if not persona_key or len(persona_key) > KEY_MAX:
            raise HistoryError("That is not a persona.")
        where = (favourites_table.c.owner == _check_user(user), favourites_table.c.persona_key == persona_key)
        try:
            with self.engine.begin() as conn:
                if not on:
                    conn.execute(delete(favourites_table).where(*where))
                    return
                if persona_key.startswith(OWN_PERSONA_PREFIX):
                    self._own_persona_row(conn, persona_key, user)
                if conn.execute(select(favourites_table.c.owner).where(*where)).first() is None:
                    conn.execute(
                        insert(favourites_table).values(owner=user, persona_key=persona_key, created_at=_now())
                    )
        except IntegrityError:
            pass  # starred at the same moment from another tab: it is starred

    # ---------------------------------------------------------- own personas
    def own_personas(self, user: str) -> list[Persona]:
        """The user's own personas, by name; `key` is the stored id ("mine-…")."""
        query = (
            select(own_personas_table)
            .where(own_personas_table.c.owner == _check_user(user))
            .order_by(own_personas_table.c.name_key, own_personas_table.c.id)
        )
        with self.engine.connect() as conn:
            return [make_persona(r.name, r.prompt, r.emoji, r.id) for r in conn.execute(query)]

    def save_persona(
        self, user: str, name: str, prompt: str, emoji: str = "", persona_id: str | None = None
    ) -> Persona:
        """Create a persona, or edit the user's persona `persona_id`; names are unique per user."""
        _check_user(user)
        name, prompt, emoji = _persona_name(name), str(prompt).strip(), str(emoji).strip()[:16]
        if not name:
            raise HistoryError("A persona needs a name.")
        if not prompt:
            raise HistoryError("A persona needs a prompt.")
        now = _now()
        try:
            with self.engine.begin() as conn:
                clash = select(own_personas_table.c.id).where(
                    own_personas_table.c.owner == user, own_personas_table.c.name_key == _name_key(name)
                )
                if persona_id is not None:
                    self._own_persona_row(conn, persona_id, user)
                    clash = clash.where(own_personas_table.c.id != persona_id)
                if conn.execute(clash).first() is not None:
                    raise HistoryError(f"You already have a persona named {name!r}.")
                values = {
                    "name": name,
                    "name_key": _name_key(name),
                    "emoji": emoji,
                    "prompt": prompt,
                    "updated_at": now,
                }
                if persona_id is not None:
                    conn.execute(
                        update(own_personas_table)
                        .where(own_personas_table.c.id == persona_id, own_personas_table.c.owner == user)
                        .values(**values)
                    )
                else:
                    persona_id = f"{OWN_PERSONA_PREFIX}{uuid.uuid4().hex}"
                    conn.execute(insert(own_personas_table).values(id=persona_id, owner=user, created_at=now, **values))
        except IntegrityError as exc:  # the same name saved at the same moment elsewhere
            raise HistoryError(f"You already have a persona named {name!r}.") from exc
        return make_persona(name, prompt, emoji, persona_id)

    def delete_persona(self, user: str, persona_id: str) -> None:
        """Its favourite star goes too, and the user's chats that used it go back to no persona."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(own_personas_table).where(
                    own_personas_table.c.id == persona_id, own_personas_table.c.owner == _check_user(user)
                )
            )
            if gone.rowcount == 0:
                raise _persona_not_found(persona_id)
            conn.execute(
                delete(favourites_table).where(
                    favourites_table.c.owner == user, favourites_table.c.persona_key == persona_id
                )
            )
            conn.execute(
                update(sessions)
                .where(sessions.c.owner == user, sessions.c.persona == persona_id)
                .values(persona=None, slots="{}")
            )

    def export_personas(self, user: str) -> str:
        data = {
            "format": PERSONAS_FORMAT,
            "personas": [{"name": p.name, "emoji": p.emoji, "prompt": p.prompt} for p in self.own_personas(user)],
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    def import_personas(self, data: str | bytes, user: str) -> list[Persona]:
        """All or nothing; a name the user already has gets " (imported)"."""
        _check_user(user)
        export = _load_export(data, PERSONAS_FORMAT, "a personas export")
        entries = export.get("personas")
        if not isinstance(entries, list):
            raise HistoryError("The personas export holds no list of personas.")
        cleaned: list[tuple[str, str, str]] = []
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                raise HistoryError(f"Persona {n} of the file cannot be read.")
            name = _persona_name(entry.get("name") or "") if isinstance(entry.get("name"), str) else ""
            prompt = entry.get("prompt").strip() if isinstance(entry.get("prompt"), str) else ""
            emoji = entry.get("emoji").strip()[:16] if isinstance(entry.get("emoji"), str) else ""
            if not name or not prompt:
                raise HistoryError(f"Persona {n} of the file has no name or no prompt.")
            cleaned.append((name, prompt, emoji))
        imported: list[Persona] = []
        now = _now()
        try:
            with self.engine.begin() as conn:
                taken = set(
                    conn.execute(
                        select(own_personas_table.c.name_key).where(own_personas_table.c.owner == user)
                    ).scalars()
                )
                for name, prompt, emoji in cleaned:
                    name = _unique_name(name, taken, _name_key)
                    taken.add(_name_key(name))
                    persona_id = _insert_own_persona(conn, user, name, prompt, emoji, now)
                    imported.append(make_persona(name, prompt, emoji, persona_id))
        except IntegrityError as exc:
            raise HistoryError("A persona of the same name was saved at the same moment; import again.") from exc
        return imported

    # ---------------------------------------------------------------- internals
    def _owned(self, conn: Connection, session_id: str, user: str) -> Row:
        if not isinstance(session_id, str):
            raise _not_found()
        row = conn.execute(
            select(sessions).where(sessions.c.id == session_id, sessions.c.owner == _check_user(user))
        ).first()
        if row is None:
            raise _not_found()
        return row

    def _own_persona_row(self, conn: Connection, persona_id: str, user: str) -> Row:
        row = conn.execute(
            select(own_personas_table).where(
                own_personas_table.c.id == str(persona_id), own_personas_table.c.owner == _check_user(user)
            )
        ).first()
        if row is None:
            raise _persona_not_found(persona_id)
        return row

    def _update(self, session_id: str, user: str, conn: Connection | None = None, **values: Any) -> None:
        """Update the user's session (always its updated_at), or refuse as if it did not exist."""
        if not isinstance(session_id, str):
            raise _not_found()
        statement = (
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.owner == _check_user(user))
            .values(updated_at=_now(), **values)
        )
        if conn is None:
            with self.engine.begin() as own:
                result = own.execute(statement)
        else:
            result = conn.execute(statement)
        if result.rowcount == 0:
            raise _not_found()

    def _persona_label(self, persona_key: str, user: str) -> str:
        if persona_key.startswith(OWN_PERSONA_PREFIX):
            with self.engine.connect() as conn:
                name = conn.execute(
                    select(own_personas_table.c.name).where(
                        own_personas_table.c.id == persona_key, own_personas_table.c.owner == user
                    )
                ).scalar()
            return name or "(a deleted persona of yours)"
        return persona_key.rsplit("@", 1)[0]

    def _import_own_persona(self, conn: Connection, persona_id: str, carried: object, user: str) -> str | None:
        """The imported chat's persona of your own: yours already, the same one under its name,
        or recreated from the export; None when the export does not carry it."""
        if conn.execute(
            select(own_personas_table.c.id).where(
                own_personas_table.c.id == persona_id, own_personas_table.c.owner == user
            )
        ).first():
            return persona_id
        if not isinstance(carried, dict):
            return None
        name = _persona_name(carried.get("name")) if isinstance(carried.get("name"), str) else ""
        prompt = carried.get("prompt").strip() if isinstance(carried.get("prompt"), str) else ""
        emoji = carried.get("emoji").strip()[:16] if isinstance(carried.get("emoji"), str) else ""
        if not name or not prompt:
            return None
        rows = conn.execute(select(own_personas_table).where(own_personas_table.c.owner == user)).all()
        for row in rows:
            if row.name_key == _name_key(name) and row.prompt == prompt:
                return row.id
        name = _unique_name(name, {r.name_key for r in rows}, _name_key)
        return _insert_own_persona(conn, user, name, prompt, emoji, _now())

    @staticmethod
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
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
        )
