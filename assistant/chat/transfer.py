"""Exporting and importing chats (JSON, Markdown) and own personas (JSON).

Imports are all or nothing, never overwrite (a clashing name gets " (imported)"), and refuse
files over 5 MB or that are not an export of the right kind, with a message that says which.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, messages_from_dict, messages_to_dict
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from assistant.chat.personas import EMOJI_MAX, OwnPersonas, unique_name
from assistant.chat.schema import (
    EXPORT_FORMAT,
    KEY_MAX,
    MAX_IMPORT_BYTES,
    OWN_PERSONA_PREFIX,
    PERSONAS_FORMAT,
    ChatSession,
    HistoryError,
    as_utc,
    check_user,
    clean_name,
    dump_message,
    messages_table,
    name_key,
    now,
    own_personas_table,
    persona_name,
    sessions,
)
from assistant.core.personas import Persona, make_persona

if TYPE_CHECKING:
    from assistant.chat.store import Sessions


def load_export(data: str | bytes, expected: str, what: str) -> dict:
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


def _text(entry: dict, key: str, limit: int | None = None) -> str:
    value = entry.get(key)
    return (value.strip()[:limit] if limit else value.strip()) if isinstance(value, str) else ""


class Transfer:
    """Export and import of one user's chats and own personas."""

    def __init__(self, sessions: Sessions, personas: OwnPersonas):
        self.sessions = sessions
        self.personas = personas
        self.engine = sessions.engine

    # -------------------------------------------------------------------- chats
    def export_json(self, session_id: str, user: str) -> str:
        """The session and its messages; a persona of your own travels with it, so the chat
        keeps its persona when imported elsewhere."""
        session = self.sessions.get(session_id, user)
        data: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "name": session.name,
            "persona": session.persona,
            "slots": session.slots,
            "created_at": session.created_at.isoformat() if session.created_at else None,
            "messages": messages_to_dict(self.sessions.messages(session_id, user).messages),
        }
        if session.persona and session.persona.startswith(OWN_PERSONA_PREFIX):
            with self.engine.connect() as conn:
                try:
                    row = OwnPersonas.row(conn, session.persona, user)
                except HistoryError:
                    row = None
            if row is not None:
                data["own_persona"] = {"name": row.name, "emoji": row.emoji, "prompt": row.prompt}
        return json.dumps(data, ensure_ascii=False, indent=1)

    def export_markdown(self, session_id: str, user: str) -> str:
        session = self.sessions.get(session_id, user)
        out = [f"# {session.name}", ""]
        if session.persona:
            out += [f"Persona: {self.personas.label(session.persona, user)}", ""]
        for message in self.sessions.messages(session_id, user).messages:
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
        check_user(user)
        export = load_export(data, EXPORT_FORMAT, "a chat session export")
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
        moment = now()
        created = moment
        if isinstance(export.get("created_at"), str):
            try:
                created = as_utc(datetime.fromisoformat(export["created_at"])) or moment
            except ValueError:
                pass
        with self.engine.begin() as conn:
            if persona is not None and persona.startswith(OWN_PERSONA_PREFIX):
                persona = self._import_own_persona(conn, persona, export.get("own_persona"), user)
            taken = set(conn.execute(select(sessions.c.name).where(sessions.c.owner == user)).scalars())
            name = unique_name(clean_name(str(export.get("name") or "")) or "Imported chat", taken)
            session_id = uuid.uuid4().hex
            conn.execute(
                insert(sessions).values(
                    id=session_id,
                    owner=user,
                    name=name,
                    persona=persona,
                    slots=json.dumps({str(k): str(v) for k, v in slots.items()}, ensure_ascii=False),
                    created_at=created,
                    updated_at=moment,
                    named=True,
                )
            )
            if msgs:
                conn.execute(
                    insert(messages_table), [{"session_id": session_id, "message": dump_message(m)} for m in msgs]
                )
        return self.sessions.get(session_id, user)

    # ----------------------------------------------------------------- personas
    def export_personas(self, user: str) -> str:
        data = {
            "format": PERSONAS_FORMAT,
            "personas": [{"name": p.name, "emoji": p.emoji, "prompt": p.prompt} for p in self.personas.own(user)],
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    def import_personas(self, data: str | bytes, user: str) -> list[Persona]:
        """All or nothing; a name the user already has gets " (imported)"."""
        check_user(user)
        export = load_export(data, PERSONAS_FORMAT, "a personas export")
        entries = export.get("personas")
        if not isinstance(entries, list):
            raise HistoryError("The personas export holds no list of personas.")
        cleaned: list[tuple[str, str, str]] = []
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                raise HistoryError(f"Persona {n} of the file cannot be read.")
            name = persona_name(entry.get("name") or "") if isinstance(entry.get("name"), str) else ""
            prompt, emoji = _text(entry, "prompt"), _text(entry, "emoji", EMOJI_MAX)
            if not name or not prompt:
                raise HistoryError(f"Persona {n} of the file has no name or no prompt.")
            cleaned.append((name, prompt, emoji))
        imported: list[Persona] = []
        try:
            with self.engine.begin() as conn:
                taken = set(
                    conn.execute(
                        select(own_personas_table.c.name_key).where(own_personas_table.c.owner == user)
                    ).scalars()
                )
                for name, prompt, emoji in cleaned:
                    name = unique_name(name, taken, name_key)
                    taken.add(name_key(name))
                    persona_id = OwnPersonas.insert(conn, user, name, prompt, emoji)
                    imported.append(make_persona(name, prompt, emoji, persona_id))
        except IntegrityError as exc:
            raise HistoryError("A persona of the same name was saved at the same moment; import again.") from exc
        return imported

    def _import_own_persona(self, conn: Connection, persona_id: str, carried: object, user: str) -> str | None:
        """The imported chat's persona of your own: yours already, the same one under its name,
        or recreated from the export; None when the export does not carry it."""
        try:
            return OwnPersonas.row(conn, persona_id, user).id
        except HistoryError:
            pass
        if not isinstance(carried, dict):
            return None
        name = persona_name(carried.get("name")) if isinstance(carried.get("name"), str) else ""
        prompt, emoji = _text(carried, "prompt"), _text(carried, "emoji", EMOJI_MAX)
        if not name or not prompt:
            return None
        rows = conn.execute(select(own_personas_table).where(own_personas_table.c.owner == user)).all()
        for row in rows:
            if row.name_key == name_key(name) and row.prompt == prompt:
                return row.id
        name = unique_name(name, {r.name_key for r in rows}, name_key)
        return OwnPersonas.insert(conn, user, name, prompt, emoji)
