"""Each user's favourite personas and personas of their own (with `{slot}` variables)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from assistant.chat.schema import (
    KEY_MAX,
    NAME_MAX,
    OWN_PERSONA_PREFIX,
    HistoryError,
    check_user,
    favourites_table,
    name_key,
    now,
    own_personas_table,
    persona_name,
    persona_not_found,
    sessions,
)
from assistant.core.personas import Persona, make_persona

EMOJI_MAX = 16


def unique_name(name: str, taken: Collection[str], key: Callable[[str], str] = lambda s: s) -> str:
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


class OwnPersonas:
    """Favourites (any persona's key) and personas of the user's own (keys "mine-…")."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # -------------------------------------------------------------- favourites
    def favourites(self, user: str) -> set[str]:
        """Keys of the personas the user starred."""
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(favourites_table.c.persona_key).where(favourites_table.c.owner == check_user(user))
                ).scalars()
            )

    def set_favourite(self, user: str, persona_key: str, on: bool) -> None:
        """Idempotent both ways; a persona of your own can only be starred by you."""
        persona_key = str(persona_key)
        if not persona_key or len(persona_key) > KEY_MAX:
            raise HistoryError("That is not a persona.")
        where = (favourites_table.c.owner == check_user(user), favourites_table.c.persona_key == persona_key)
        try:
            with self.engine.begin() as conn:
                if not on:
                    conn.execute(delete(favourites_table).where(*where))
                    return
                if persona_key.startswith(OWN_PERSONA_PREFIX):
                    self.row(conn, persona_key, user)
                if conn.execute(select(favourites_table.c.owner).where(*where)).first() is None:
                    conn.execute(insert(favourites_table).values(owner=user, persona_key=persona_key, created_at=now()))
        except IntegrityError:
            pass  # starred at the same moment from another tab: it is starred

    # ------------------------------------------------------------ own personas
    def own(self, user: str) -> list[Persona]:
        """The user's own personas, by name; `key` is the stored id ("mine-…")."""
        query = (
            select(own_personas_table)
            .where(own_personas_table.c.owner == check_user(user))
            .order_by(own_personas_table.c.name_key, own_personas_table.c.id)
        )
        with self.engine.connect() as conn:
            return [make_persona(r.name, r.prompt, r.emoji, r.id) for r in conn.execute(query)]

    def save(self, user: str, name: str, prompt: str, emoji: str = "", persona_id: str | None = None) -> Persona:
        """Create a persona, or edit the user's persona `persona_id`; names are unique per user."""
        check_user(user)
        name, prompt, emoji = persona_name(name), str(prompt).strip(), str(emoji).strip()[:EMOJI_MAX]
        if not name:
            raise HistoryError("A persona needs a name.")
        if not prompt:
            raise HistoryError("A persona needs a prompt.")
        moment = now()
        try:
            with self.engine.begin() as conn:
                clash = select(own_personas_table.c.id).where(
                    own_personas_table.c.owner == user, own_personas_table.c.name_key == name_key(name)
                )
                if persona_id is not None:
                    self.row(conn, persona_id, user)
                    clash = clash.where(own_personas_table.c.id != persona_id)
                if conn.execute(clash).first() is not None:
                    raise HistoryError(f"You already have a persona named {name!r}.")
                if persona_id is not None:
                    conn.execute(
                        update(own_personas_table)
                        .where(own_personas_table.c.id == persona_id, own_personas_table.c.owner == user)
                        .values(name=name, name_key=name_key(name), emoji=emoji, prompt=prompt, updated_at=moment)
                    )
                else:
                    persona_id = self.insert(conn, user, name, prompt, emoji)
        except IntegrityError as exc:  # the same name saved at the same moment elsewhere
            raise HistoryError(f"You already have a persona named {name!r}.") from exc
        return make_persona(name, prompt, emoji, persona_id)

    def delete(self, user: str, persona_id: str) -> None:
        """Its favourite star goes too, and the user's chats that used it go back to no persona."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(own_personas_table).where(
                    own_personas_table.c.id == persona_id, own_personas_table.c.owner == check_user(user)
                )
            )
            if gone.rowcount == 0:
                raise persona_not_found(persona_id)
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

    def label(self, persona_key: str, user: str) -> str:
        """A persona's name for an export; a deleted persona of your own says so."""
        if persona_key.startswith(OWN_PERSONA_PREFIX):
            with self.engine.connect() as conn:
                name = conn.execute(
                    select(own_personas_table.c.name).where(
                        own_personas_table.c.id == persona_key, own_personas_table.c.owner == user
                    )
                ).scalar()
            return name or "(a deleted persona of yours)"
        return persona_key.rsplit("@", 1)[0]

    # ---------------------------------------------------------------- internals
    @staticmethod
    def row(conn: Connection, persona_id: str, user: str) -> Row:
        """The user's persona `persona_id`, or HistoryError (another's is as if missing)."""
        row = conn.execute(
            select(own_personas_table).where(
                own_personas_table.c.id == str(persona_id), own_personas_table.c.owner == check_user(user)
            )
        ).first()
        if row is None:
            raise persona_not_found(persona_id)
        return row

    @staticmethod
    def insert(conn: Connection, user: str, name: str, prompt: str, emoji: str) -> str:
        """A new persona of `user`'s own (the name already made unique); its id."""
        persona_id = f"{OWN_PERSONA_PREFIX}{uuid.uuid4().hex}"
        moment = now()
        conn.execute(
            insert(own_personas_table).values(
                id=persona_id, owner=user, name=name, name_key=name_key(name), emoji=emoji, prompt=prompt,
                created_at=moment, updated_at=moment,
            )
        )  # fmt: skip
        return persona_id
