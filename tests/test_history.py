"""The chat store on SQLite and on a real PostgreSQL server: sessions, messages, export and
import, favourites, your own personas, isolation between users, and two writing processes."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    text,
)

from assistant.chat.schema import EXPORT_FORMAT, MAX_IMPORT_BYTES, PERSONAS_FORMAT, ChatSession, HistoryError
from assistant.chat.store import ChatStore
from tests.postgres import postgres_database, postgres_url  # noqa: F401  (fixtures)

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = [
    {"breadcrumb": "Databases > Sharding", "source": "Databases/Sharding.md", "first_line": 2, "last_line": 4},
    {"breadcrumb": "Cooking > Bread", "source": "Cooking.txt", "first_line": 1, "last_line": 2},
]


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database; the SQLite file sits in a folder that does not exist yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new folder' / 'history.sqlite3'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture()
def store(db_url):
    chat_store = ChatStore(db_url)
    yield chat_store
    chat_store.engine.dispose()


def refused(call, *args) -> str:
    with pytest.raises(HistoryError) as info:
        call(*args)
    return str(info.value)


# ------------------------------------------------------------------------- sessions
def test_sessions_crud_and_persistence(store, db_url):
    first = store.sessions.create("alice")
    assert isinstance(first, ChatSession) and first.user == "alice"
    assert first.name == "New chat" and not first.named
    second = store.sessions.create("alice", "  Sharding   questions ")
    assert second.name == "Sharding questions"
    assert [s.id for s in store.sessions.list("alice")] == [second.id, first.id]

    store.sessions.touch(first.id, "alice")  # newest activity first
    assert [s.id for s in store.sessions.list("alice")] == [first.id, second.id]

    store.sessions.rename(second.id, "x" * 300, "alice")
    assert store.sessions.get(second.id, "alice").name == "x" * 200
    assert "name" in refused(store.sessions.rename, second.id, "   ", "alice")
    store.sessions.rename(second.id, "Renamed", "alice")
    store.sessions.set_persona(second.id, "Linux Terminal@12", {"shell": "bash"}, "alice")
    got = store.sessions.get(second.id, "alice")
    assert (got.name, got.persona, got.slots, got.user) == ("Renamed", "Linux Terminal@12", {"shell": "bash"}, "alice")
    assert got.created_at.tzinfo is not None and got.updated_at >= got.created_at
    store.sessions.add_user(second.id, "kept?", "alice")

    reopened = ChatStore(db_url)  # another store on the same URL: everything was saved
    try:
        again = reopened.sessions.get(second.id, "alice")
        assert (again.name, again.persona, again.slots) == ("Renamed", "Linux Terminal@12", {"shell": "bash"})
        assert [m.content for m in reopened.sessions.messages(second.id, "alice").messages] == ["kept?"]
        assert {s.id for s in reopened.sessions.list("alice")} == {first.id, second.id}
    finally:
        reopened.engine.dispose()

    store.sessions.set_persona(second.id, None, None, "alice")
    assert (store.sessions.get(second.id, "alice").persona, store.sessions.get(second.id, "alice").slots) == (None, {})
    store.sessions.delete(second.id, "alice")
    assert [s.id for s in store.sessions.list("alice")] == [first.id]
    assert store.sessions.count_messages(second.id) == 0  # its messages went with it
    assert refused(store.sessions.get, second.id, "alice") == refused(store.sessions.get, "no-such-id", "alice")
    assert "no such chat session" in refused(store.sessions.delete, second.id, "alice")


def test_a_chat_is_named_by_its_first_question_and_stays_renamable(store):
    chat = store.sessions.create("alice")
    store.sessions.add_user(chat.id, "  How does   consistent hashing spread keys across the nodes of a ring?", "alice")
    named = store.sessions.get(chat.id, "alice")
    assert named.name == "How does consistent hashing spread keys across the…" and named.named
    store.sessions.add_user(chat.id, "and when a node leaves?", "alice")
    assert store.sessions.get(chat.id, "alice").name == named.name  # only the first question names it
    store.sessions.rename(chat.id, "Hashing", "alice")
    assert store.sessions.get(chat.id, "alice").name == "Hashing"
    titled = store.sessions.create("alice", "My own title")
    store.sessions.add_user(titled.id, "what is a CDN?", "alice")
    assert store.sessions.get(titled.id, "alice").name == "My own title"  # a name the user gave stays


def test_sqlite_file_is_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'history.sqlite3'}"
    ChatStore(url).engine.dispose()
    with sqlite3.connect(tmp_path / "a" / "b" / "history.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_creation_is_idempotent(db_url):
    stores = [ChatStore(db_url) for _ in range(3)]
    session = stores[0].sessions.create("")
    assert [s.id for s in stores[2].sessions.list("")] == [session.id]
    for s in stores:
        s.engine.dispose()


def test_database_of_the_single_user_version_is_upgraded(db_url):
    """A database the previous version made: its sessions become the local user's."""
    old = MetaData()
    Table(
        "chat_sessions",
        old,
        Column("id", String(64), primary_key=True),
        Column("name", String(200)),
        Column("persona", String(300)),
        Column("slots", Text),
        Column("created_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True)),
    )
    Table(
        "message_store",
        old,
        Column("id", Integer, primary_key=True),
        Column("session_id", Text),
        Column("message", Text),
    )
    engine = create_engine(db_url)
    if db_url.startswith("sqlite"):
        Path(engine.url.database).parent.mkdir(parents=True)
    old.create_all(engine)
    now = datetime.now(UTC)
    message = json.dumps({"type": "human", "data": {"content": "old question", "type": "human"}})
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO chat_sessions VALUES ('old1', 'Old chat', NULL, '{}', :t, :t)"), {"t": now})
        conn.execute(text("INSERT INTO message_store (session_id, message) VALUES ('old1', :m)"), {"m": message})
    engine.dispose()

    store = ChatStore(db_url)
    try:
        assert [(s.id, s.name, s.user) for s in store.sessions.list("")] == [("old1", "Old chat", "")]
        assert [m.content for m in store.sessions.messages("old1", "").messages] == ["old question"]
        assert store.sessions.list("alice") == []
        refused(store.sessions.get, "old1", "alice")
    finally:
        store.engine.dispose()


def test_database_made_before_migrations_is_upgraded_by_alembic(db_url):
    """A database the schema of the previous release made (create_all, no Alembic table) is
    brought to the newest revision: its data stays, its chats count as named, and new chats are not."""
    from assistant.chat.migrate import current_revision, head_revision

    old = MetaData()
    Table(
        "chat_sessions",
        old,
        Column("id", String(64), primary_key=True),
        Column("owner", String(320), nullable=False, server_default=""),
        Column("name", String(200), nullable=False),
        Column("persona", String(300)),
        Column("slots", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "message_store",
        old,
        Column("id", Integer, primary_key=True),
        Column("session_id", Text),
        Column("message", Text),
    )
    Table(
        "persona_favourites",
        old,
        Column("owner", String(320), primary_key=True),
        Column("persona_key", String(300), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    engine = create_engine(db_url)
    if db_url.startswith("sqlite"):
        Path(engine.url.database).parent.mkdir(parents=True)
    old.create_all(engine)
    moment = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO chat_sessions VALUES ('c1', 'bob', 'Old name', NULL, '{}', :t, :t)"), {"t": moment}
        )
        conn.execute(text("INSERT INTO persona_favourites VALUES ('bob', 'Poet@9', :t)"), {"t": moment})
    assert current_revision(engine) is None
    engine.dispose()

    store = ChatStore(db_url)
    try:
        assert current_revision(store.engine) == head_revision()
        old_chat = store.sessions.get("c1", "bob")
        assert (old_chat.name, old_chat.named) == ("Old name", True)
        store.sessions.add_user("c1", "a question that must not rename it", "bob")
        assert store.sessions.get("c1", "bob").name == "Old name"
        assert store.personas.favourites("bob") == {"Poet@9"}
        assert store.personas.own("bob") == []  # the table the old schema lacked exists now
        assert not store.sessions.create("bob").named
    finally:
        store.engine.dispose()


# ------------------------------------------------------------------------- messages
def test_messages_with_details_round_trip(store):
    session = store.sessions.create("alice", "Sharding")
    details = {"sources": SOURCES, "mode": "notes", "score": 0.5}
    store.sessions.add_user(session.id, "What is sharding?", "alice")
    store.sessions.add_assistant(session.id, "Sharding splits data [1].", "alice", details)
    store.sessions.add_assistant(session.id, "The model failed.", "alice", {"error": "timeout"})

    history = store.sessions.messages(session.id, "alice").messages
    assert [type(m) for m in history] == [HumanMessage, AIMessage, AIMessage]
    assert history[0].content == "What is sharding?"
    assert history[1].content == "Sharding splits data [1]." and history[1].additional_kwargs == {"details": details}
    assert history[2].additional_kwargs["details"] == {"error": "timeout"}
    assert store.sessions.count_messages(session.id) == 3 and store.sessions.count_messages(session.id, "alice") == 3

    markdown = store.transfer.export_markdown(session.id, "alice")
    assert markdown.startswith("# Sharding\n")
    assert "**You:**\n\nWhat is sharding?" in markdown
    assert "**Assistant:**\n\nSharding splits data [1]." in markdown
    assert "- [1] Databases > Sharding (Databases/Sharding.md:2-4)" in markdown
    assert "- [2] Cooking > Bread (Cooking.txt:1-2)" in markdown


def test_adding_a_message_touches_the_session(store):
    older, newer = store.sessions.create("alice", "older"), store.sessions.create("alice", "newer")
    assert store.sessions.list("alice")[0].id == newer.id
    store.sessions.add_user(older.id, "hello", "alice")
    assert store.sessions.list("alice")[0].id == older.id


# ------------------------------------------------------------------------ isolation
def test_users_cannot_see_or_change_each_others_data(store):
    alice = store.sessions.create("alice", "Alice's chat")
    store.sessions.add_user(alice.id, "alice's secret", "alice")
    bob = store.sessions.create("bob", "Bob's chat")
    store.sessions.add_user(bob.id, "bob's secret", "bob")
    local = store.sessions.create("", "Local chat")
    persona = store.personas.save("alice", "Poet", "Write a poem about {topic}.")
    store.personas.set_favourite("alice", "Linux Terminal@12", True)

    assert [s.id for s in store.sessions.list("alice")] == [alice.id]
    assert [s.id for s in store.sessions.list("bob")] == [bob.id]
    assert [s.id for s in store.sessions.list("")] == [local.id]

    for owner, other, forged in (("alice", "bob", alice.id), ("bob", "alice", bob.id), ("", "alice", local.id)):
        # the same answer as for an id that does not exist: ids cannot be probed
        assert refused(store.sessions.get, forged, other) == refused(store.sessions.get, "0" * 32, other)
        before = store.sessions.get(forged, owner)
        count = store.sessions.count_messages(forged)
        refused(store.sessions.rename, forged, "taken over", other)
        refused(store.sessions.set_persona, forged, "Poet@1", {}, other)
        refused(store.sessions.touch, forged, other)
        refused(store.sessions.messages, forged, other)
        refused(store.sessions.add_user, forged, "injected", other)
        refused(store.sessions.add_assistant, forged, "injected", other, {})
        refused(store.transfer.export_json, forged, other)
        refused(store.transfer.export_markdown, forged, other)
        refused(store.sessions.count_messages, forged, other)
        refused(store.sessions.delete, forged, other)
        assert store.sessions.get(forged, owner) == before  # not even its updated_at moved
        assert store.sessions.count_messages(forged) == count

    assert [m.content for m in store.sessions.messages(alice.id, "alice").messages] == ["alice's secret"]
    assert [m.content for m in store.sessions.messages(bob.id, "bob").messages] == ["bob's secret"]

    # personas and favourites
    assert store.personas.own("bob") == [] and store.personas.favourites("bob") == set()
    assert store.personas.favourites("alice") == {"Linux Terminal@12"}
    refused(store.personas.save, "bob", "Hijacked", "Say hi.", "", persona.key)
    refused(store.personas.delete, "bob", persona.key)
    refused(store.sessions.set_persona, bob.id, persona.key, {}, "bob")  # alice's persona on bob's chat
    refused(store.personas.set_favourite, "bob", persona.key, True)
    store.personas.set_favourite("bob", "Linux Terminal@12", False)  # only bob's star (none) goes
    assert store.personas.favourites("alice") == {"Linux Terminal@12"}
    assert [(p.key, p.name) for p in store.personas.own("alice")] == [(persona.key, "Poet")]
    assert json.loads(store.transfer.export_personas("bob"))["personas"] == []


# ------------------------------------------------------------------- export, import
def test_export_import_round_trip_and_naming(store):
    session = store.sessions.create("alice", "Sharding")
    store.sessions.set_persona(session.id, "Linux Terminal@12", {"shell": "zsh"}, "alice")
    store.sessions.add_user(session.id, "What is sharding? ✓", "alice")
    store.sessions.add_assistant(session.id, "It splits data [1].", "alice", {"sources": SOURCES[:1]})
    exported = store.transfer.export_json(session.id, "alice")
    data = json.loads(exported)
    assert data["format"] == EXPORT_FORMAT and data["name"] == "Sharding" and len(data["messages"]) == 2

    copy = store.transfer.import_json(exported, "alice")
    assert copy.id != session.id and copy.user == "alice" and copy.name == "Sharding (imported)"
    assert (copy.persona, copy.slots) == ("Linux Terminal@12", {"shell": "zsh"})
    assert store.sessions.messages(copy.id, "alice").messages == store.sessions.messages(session.id, "alice").messages
    assert store.transfer.import_json(exported.encode("utf-8"), "alice").name == "Sharding (imported 2)"
    assert store.transfer.import_json(exported, "alice").name == "Sharding (imported 3)"

    for_bob = store.transfer.import_json(exported, "bob")  # bob has no "Sharding": the name stays
    assert (for_bob.name, for_bob.user) == ("Sharding", "bob")
    assert [s.id for s in store.sessions.list("bob")] == [for_bob.id]
    assert [m.additional_kwargs for m in store.sessions.messages(for_bob.id, "bob").messages][1] == {
        "details": {"sources": SOURCES[:1]}
    }
    assert len(store.sessions.list("alice")) == 4
    refused(store.sessions.get, for_bob.id, "alice")


def test_import_refusals(store):
    session = store.sessions.create("alice", "Big")
    store.sessions.add_user(session.id, "x" * 1000, "alice")
    exported = store.transfer.export_json(session.id, "alice")

    exactly = exported + " " * (MAX_IMPORT_BYTES - len(exported.encode("utf-8")))
    assert len(exactly.encode("utf-8")) == MAX_IMPORT_BYTES
    assert store.transfer.import_json(exactly, "bob").name == "Big"  # the limit itself is allowed
    too_big = exactly + " "
    assert "larger than 5 MB" in refused(store.transfer.import_json, too_big, "bob")
    huge = json.loads(exported)
    huge["messages"][0]["data"]["content"] = "y" * MAX_IMPORT_BYTES
    assert "larger than 5 MB" in refused(store.transfer.import_json, json.dumps(huge).encode(), "bob")

    assert "not a chat session export" in refused(store.transfer.import_json, '{"hello": "world"}', "bob")
    assert "not a chat session export" in refused(store.transfer.import_json, b"\xff\xfe not json", "bob")
    assert "not a chat session export" in refused(store.transfer.import_json, "[1, 2, 3]", "bob")
    assert "personas export" in refused(store.transfer.import_json, store.transfer.export_personas("alice"), "bob")
    broken = json.loads(exported)
    broken["messages"] = [{"type": "system", "data": {"content": "obey"}}]
    assert "cannot be read" in refused(store.transfer.import_json, json.dumps(broken), "bob")
    assert len(store.sessions.list("bob")) == 1  # only the one accepted import


# ------------------------------------------------------------------------ favourites
def test_favourites(store):
    assert store.personas.favourites("alice") == set()
    store.personas.set_favourite("alice", "Linux Terminal@12", True)
    store.personas.set_favourite("alice", "Linux Terminal@12", True)  # idempotent
    store.personas.set_favourite("alice", "Life Coach@90", True)
    store.personas.set_favourite("bob", "Life Coach@90", True)
    assert store.personas.favourites("alice") == {"Linux Terminal@12", "Life Coach@90"}
    store.personas.set_favourite("alice", "Life Coach@90", False)
    store.personas.set_favourite("alice", "Life Coach@90", False)
    assert store.personas.favourites("alice") == {"Linux Terminal@12"}
    assert store.personas.favourites("bob") == {"Life Coach@90"}
    mine = store.personas.save("alice", "Chef", "Cook {dish}.")
    store.personas.set_favourite("alice", mine.key, True)
    assert store.personas.favourites("alice") == {"Linux Terminal@12", mine.key}
    store.personas.delete("alice", mine.key)  # its star goes with it
    assert store.personas.favourites("alice") == {"Linux Terminal@12"}


# ---------------------------------------------------------------------- own personas
def test_own_personas(store):
    poet = store.personas.save("alice", "  Act as a   Poet ", "Write a {form} about {topic}.", " 🪶 ")
    assert (poet.name, poet.emoji, poet.slots, poet.is_own) == ("Poet", "🪶", ("form", "topic"), True)
    assert poet.key.startswith("mine-") and poet.key == poet.id
    chef = store.personas.save("alice", "Chef", "Cook something.")
    assert chef.slots == () and chef.key != poet.key
    assert [p.name for p in store.personas.own("alice")] == ["Chef", "Poet"]

    assert "already have a persona" in refused(store.personas.save, "alice", "poet", "Another prompt.")
    assert "name" in refused(store.personas.save, "alice", "   ", "A prompt.")
    assert "prompt" in refused(store.personas.save, "alice", "Painter", "  ")
    assert "already have a persona" in refused(store.personas.save, "alice", "CHEF", "x", "", poet.key)
    bob_poet = store.personas.save("bob", "Poet", "Bob's poet.")  # names are unique per user only
    assert bob_poet.key != poet.key

    edited = store.personas.save("alice", "Poet", "Write a haiku about {season}.", "🌸", poet.key)
    assert (edited.key, edited.slots, edited.emoji) == (poet.key, ("season",), "🌸")
    assert store.personas.save("alice", "Lyric Poet", edited.prompt, "🌸", poet.key).name == "Lyric Poet"
    stored = {p.key: p for p in store.personas.own("alice")}
    assert stored[poet.key].name == "Lyric Poet" and stored[poet.key].prompt == "Write a haiku about {season}."
    assert "no persona" in refused(store.personas.save, "alice", "Ghost", "Boo.", "", "mine-" + "0" * 32)

    session = store.sessions.create("alice", "Haiku")
    store.sessions.set_persona(session.id, poet.key, {"season": "spring"}, "alice")
    assert "Persona: Lyric Poet" in store.transfer.export_markdown(session.id, "alice")
    store.personas.delete("alice", poet.key)
    assert [p.key for p in store.personas.own("alice")] == [chef.key]
    assert store.sessions.get(session.id, "alice").persona is None  # the chat no longer points at it
    assert "no persona" in refused(store.personas.delete, "alice", poet.key)
    assert [p.key for p in store.personas.own("bob")] == [bob_poet.key]


def test_personas_export_import(store):
    store.personas.save("alice", "Poet", "Write a {form}.", "🪶")
    store.personas.save("alice", "Chef", "Cook {dish} for {guests}.", "🍳")
    exported = store.transfer.export_personas("alice")
    data = json.loads(exported)
    assert data["format"] == PERSONAS_FORMAT
    assert sorted(data["personas"], key=lambda p: p["name"]) == [
        {"name": "Chef", "emoji": "🍳", "prompt": "Cook {dish} for {guests}."},
        {"name": "Poet", "emoji": "🪶", "prompt": "Write a {form}."},
    ]

    for_bob = store.transfer.import_personas(exported, "bob")
    assert sorted((p.name, p.slots) for p in for_bob) == [("Chef", ("dish", "guests")), ("Poet", ("form",))]
    assert {p.key for p in store.personas.own("bob")} == {p.key for p in for_bob}
    assert not {p.key for p in for_bob} & {p.key for p in store.personas.own("alice")}

    again = store.transfer.import_personas(exported.encode("utf-8"), "alice")
    assert sorted(p.name for p in again) == ["Chef (imported)", "Poet (imported)"]
    assert sorted(p.name for p in store.transfer.import_personas(exported, "alice")) == [
        "Chef (imported 2)",
        "Poet (imported 2)",
    ]
    assert len(store.personas.own("alice")) == 6

    assert "larger than 5 MB" in refused(store.transfer.import_personas, " " * (MAX_IMPORT_BYTES + 1), "carol")
    assert "not a personas export" in refused(store.transfer.import_personas, '{"personas": []}', "carol")
    session = store.sessions.create("alice")
    assert "chat session export" in refused(
        store.transfer.import_personas, store.transfer.export_json(session.id, "alice"), "carol"
    )
    bad = json.dumps(
        {"format": PERSONAS_FORMAT, "personas": [{"name": "Ok", "prompt": "Fine."}, {"name": "No prompt"}]}
    )
    assert "Persona 2" in refused(store.transfer.import_personas, bad, "carol")
    assert store.personas.own("carol") == []  # all or nothing


def test_exported_chat_keeps_its_own_persona(store):
    poet = store.personas.save("alice", "Poet", "Write a {form}.", "🪶")
    session = store.sessions.create("alice", "Poems")
    store.sessions.set_persona(session.id, poet.key, {"form": "sonnet"}, "alice")
    exported = store.transfer.export_json(session.id, "alice")

    assert store.transfer.import_json(exported, "alice").persona == poet.key  # already hers
    copy = store.transfer.import_json(exported, "bob")  # recreated as bob's own
    (bobs,) = store.personas.own("bob")
    assert copy.persona == bobs.key != poet.key and (bobs.name, bobs.prompt) == ("Poet", "Write a {form}.")
    assert store.transfer.import_json(exported, "bob").persona == bobs.key  # and found again, not duplicated
    assert len(store.personas.own("bob")) == 1


# ----------------------------------------------------------------------- concurrency
WORKER = textwrap.dedent("""
    import sys
    from assistant.chat.store import ChatStore

    url, user = sys.argv[1], sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # both start on one signal, so their schema creation races
    store = ChatStore(url)
    session = store.sessions.create(user, user + "'s chat")
    print(session.id, flush=True)
    sys.stdin.readline()  # and write on another
    for i in range(50):
        if i % 2:
            store.sessions.add_assistant(session.id, f"{user} {i}", user, {"n": i})
        else:
            store.sessions.add_user(session.id, f"{user} {i}", user)
""")


def test_two_processes_write_at_once(db_url):
    """Two processes on one new database: both create the schema, then both write 50 messages."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
    workers = {
        user: subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", WORKER, db_url, user],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user in ("p1", "p2")
    }

    def all_say() -> list[str]:
        said = [proc.stdout.readline().strip() for proc in workers.values()]
        for line, proc in zip(said, workers.values(), strict=True):
            assert line, proc.communicate(timeout=60)[1]  # it died: show why
        return said

    def go() -> None:
        for proc in workers.values():
            proc.stdin.write("go\n")
            proc.stdin.flush()

    try:
        assert all_say() == ["ready", "ready"]  # imports done: the signal starts both at once
        go()
        ids = dict(zip(workers, all_say(), strict=True))
        go()
        for proc in workers.values():
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
    finally:
        for proc in workers.values():
            proc.kill()

    store = ChatStore(db_url)
    try:
        for user, session_id in ids.items():
            history = store.sessions.messages(session_id, user).messages
            assert [m.content for m in history] == [
                f"{user} {i}" for i in range(50)
            ]  # none lost, duplicated or reordered
            assert [m.additional_kwargs.get("details", {}).get("n") for m in history][1::2] == list(range(1, 50, 2))
            assert [s.id for s in store.sessions.list(user)] == [session_id]
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, session_id FROM message_store ORDER BY id")).all()
        assert len(rows) == len({r.id for r in rows}) == 100
        assert sorted(r.session_id for r in rows) == sorted([ids["p1"]] * 50 + [ids["p2"]] * 50)
    finally:
        store.engine.dispose()
    # Otherwise one process wrote all before the other began, and nothing above was tested.
    turns = sum(a.session_id != b.session_id for a, b in itertools.pairwise(rows))
    assert turns > 1, "the two processes did not write at the same time"
