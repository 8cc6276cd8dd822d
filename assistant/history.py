"""Chat sessions in SQL: messages through LangChain's SQLChatMessageHistory, and a small
table of sessions (name, persona, slot values) beside it in the same database.

Any SQLAlchemy URL works (HISTORY_DB_URL); the default is a SQLite file in STORE_DIR.
"""

from __future__ import annotations

import json
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, messages_from_dict, messages_to_dict
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, create_engine, delete, insert, select, update

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.chat_message_histories import SQLChatMessageHistory

MESSAGES_TABLE = "message_store"
EXPORT_FORMAT = "notes-assistant-session/1"

metadata = MetaData()
sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("persona", String(300)),  # the persona key ("Name@line"), or NULL
    Column("slots", Text, nullable=False, default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class HistoryError(ValueError):
    """A session that does not exist, or an import file that is not a session export."""


@dataclass
class ChatSession:
    id: str
    name: str
    persona: str | None = None
    slots: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ChatStore:
    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = create_engine(url, future=True)
        metadata.create_all(self.engine)

    # ---------------------------------------------------------------- sessions
    def list_sessions(self) -> list[ChatSession]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sessions).order_by(sessions.c.updated_at.desc(), sessions.c.name)).all()
        return [self._row(r) for r in rows]

    def get(self, session_id: str) -> ChatSession:
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
        if row is None:
            raise HistoryError(f"no chat session {session_id!r}")
        return self._row(row)

    def create(self, name: str | None = None) -> ChatSession:
        now = _now()
        session = ChatSession(id=uuid.uuid4().hex, name=(name or "").strip() or f"Chat {now:%Y-%m-%d %H:%M}",
                              created_at=now, updated_at=now)
        with self.engine.begin() as conn:
            conn.execute(insert(sessions).values(id=session.id, name=session.name, persona=None, slots="{}",
                                                 created_at=now, updated_at=now))
        return session

    def rename(self, session_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise HistoryError("a session name cannot be empty")
        self._update(session_id, name=name[:200])

    def set_persona(self, session_id: str, persona_key: str | None, slots: dict[str, str] | None = None) -> None:
        self._update(session_id, persona=persona_key, slots=json.dumps(slots or {}, ensure_ascii=False))

    def delete(self, session_id: str) -> None:
        self.messages(session_id).clear()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == session_id))

    def touch(self, session_id: str) -> None:
        self._update(session_id)

    # ---------------------------------------------------------------- messages
    def messages(self, session_id: str) -> SQLChatMessageHistory:
        return SQLChatMessageHistory(session_id=session_id, connection=self.engine, table_name=MESSAGES_TABLE)

    def add_user(self, session_id: str, text: str) -> None:
        """Saved before the model is called, so a failed call never loses the question."""
        self.messages(session_id).add_message(HumanMessage(text))
        self.touch(session_id)

    def add_assistant(self, session_id: str, text: str, **details) -> None:
        self.messages(session_id).add_message(AIMessage(text, additional_kwargs={"details": details}))
        self.touch(session_id)

    # ---------------------------------------------------------- export / import
    def export_json(self, session_id: str) -> str:
        session = self.get(session_id)
        data = {
            "format": EXPORT_FORMAT,
            "name": session.name,
            "persona": session.persona,
            "slots": session.slots,
            "created_at": session.created_at.isoformat() if session.created_at else None,
            "messages": messages_to_dict(self.messages(session_id).messages),
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    def export_markdown(self, session_id: str) -> str:
        session = self.get(session_id)
        out = [f"# {session.name}", ""]
        if session.persona:
            out += [f"Persona: {session.persona.split('@')[0]}", ""]
        for message in self.messages(session_id).messages:
            who = "You" if isinstance(message, HumanMessage) else "Assistant"
            out += [f"**{who}:**", "", str(message.content), ""]
            details = message.additional_kwargs.get("details") or {}
            for n, src in enumerate(details.get("sources") or [], 1):
                out.append(f"- [{n}] {src.get('breadcrumb')} ({src.get('source')}:{src.get('first_line')}-{src.get('last_line')})")
            if details.get("sources"):
                out.append("")
        return "\n".join(out).rstrip() + "\n"

    def import_json(self, text: str | bytes) -> ChatSession:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HistoryError(f"not a JSON file: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT or not isinstance(data.get("messages"), list):
            raise HistoryError(f"not a session export (expected format {EXPORT_FORMAT!r})")
        try:
            msgs: list[BaseMessage] = messages_from_dict(data["messages"])
        except (KeyError, TypeError, ValueError) as exc:
            raise HistoryError(f"the export holds a message that cannot be read: {exc}") from exc
        session = self.create(str(data.get("name") or "Imported chat"))
        slots = data.get("slots") if isinstance(data.get("slots"), dict) else {}
        self.set_persona(session.id, data.get("persona"), {str(k): str(v) for k, v in slots.items()})
        self.messages(session.id).add_messages(msgs)
        return self.get(session.id)

    # ---------------------------------------------------------------- internals
    def _update(self, session_id: str, **values) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(update(sessions).where(sessions.c.id == session_id).values(updated_at=_now(), **values))
        if result.rowcount == 0:
            raise HistoryError(f"no chat session {session_id!r}")

    @staticmethod
    def _row(row) -> ChatSession:
        return ChatSession(id=row.id, name=row.name, persona=row.persona, slots=json.loads(row.slots or "{}"),
                           created_at=row.created_at, updated_at=row.updated_at)
