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

from assistant.history import (
    EXPORT_FORMAT,
    MAX_IMPORT_BYTES,
    PERSONAS_FORMAT,
    ChatSession,
    ChatStore,
    HistoryError,
)
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
    first = store.create("alice")
    assert isinstance(first, ChatSession) and first.user == "alice"
    assert first.name.startswith("Chat ") and datetime.strptime(first.name, "Chat %Y-%m-%d %H:%M")
    second = store.create("alice", "  Sharding   questions ")
    assert second.name == "Sharding questions"
    assert [s.id for s in store.list_sessions("alice")] == [second.id, first.id]

    store.touch(first.id, "alice")  # newest activity first
    assert [s.id for s in store.list_sessions("alice")] == [first.id, second.id]

    store.rename(second.id, "x" * 300, "alice")
    assert store.get(second.id, "alice").name == "x" * 200
    assert "name" in refused(store.rename, second.id, "   ", "alice")
    store.rename(second.id, "Renamed", "alice")
    store.set_persona(second.id, "Linux Terminal@12", {"shell": "bash"}, "alice")
    got = store.get(second.id, "alice")
    assert (got.name, got.persona, got.slots, got.user) == ("Renamed", "Linux Terminal@12", {"shell": "bash"}, "alice")
    assert got.created_at.tzinfo is not None and got.updated_at >= got.created_at
    store.add_user(second.id, "kept?", "alice")

    reopened = ChatStore(db_url)  # another store on the same URL: everything was saved
    try:
        again = reopened.get(second.id, "alice")
        assert (again.name, again.persona, again.slots) == ("Renamed", "Linux Terminal@12", {"shell": "bash"})
        assert [m.content for m in reopened.messages(second.id, "alice").messages] == ["kept?"]
        assert {s.id for s in reopened.list_sessions("alice")} == {first.id, second.id}
    finally:
        reopened.engine.dispose()

    store.set_persona(second.id, None, None, "alice")
    assert (store.get(second.id, "alice").persona, store.get(second.id, "alice").slots) == (None, {})
    store.delete(second.id, "alice")
    assert [s.id for s in store.list_sessions("alice")] == [first.id]
    assert store.count_messages(second.id) == 0  # its messages went with it
    assert refused(store.get, second.id, "alice") == refused(store.get, "no-such-id", "alice")
    assert "no such chat session" in refused(store.delete, second.id, "alice")


def test_sqlite_file_is_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'history.sqlite3'}"
    ChatStore(url).engine.dispose()
    with sqlite3.connect(tmp_path / "a" / "b" / "history.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_creation_is_idempotent(db_url):
    stores = [ChatStore(db_url) for _ in range(3)]
    session = stores[0].create("")
    assert [s.id for s in stores[2].list_sessions("")] == [session.id]
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
        assert [(s.id, s.name, s.user) for s in store.list_sessions("")] == [("old1", "Old chat", "")]
        assert [m.content for m in store.messages("old1", "").messages] == ["old question"]
        assert store.list_sessions("alice") == []
        refused(store.get, "old1", "alice")
    finally:
        store.engine.dispose()


# ------------------------------------------------------------------------- messages
def test_messages_with_details_round_trip(store):
    session = store.create("alice", "Sharding")
    details = {"sources": SOURCES, "mode": "notes", "score": 0.5}
    store.add_user(session.id, "What is sharding?", "alice")
    store.add_assistant(session.id, "Sharding splits data [1].", "alice", details)
    store.add_assistant(session.id, "The model failed.", "alice", {"error": "timeout"})

    history = store.messages(session.id, "alice").messages
    assert [type(m) for m in history] == [HumanMessage, AIMessage, AIMessage]
    assert history[0].content == "What is sharding?"
    assert history[1].content == "Sharding splits data [1]." and history[1].additional_kwargs == {"details": details}
    assert history[2].additional_kwargs["details"] == {"error": "timeout"}
    assert store.count_messages(session.id) == 3 and store.count_messages(session.id, "alice") == 3

    markdown = store.export_markdown(session.id, "alice")
    assert markdown.startswith("# Sharding\n")
    assert "**You:**\n\nWhat is sharding?" in markdown
    assert "**Assistant:**\n\nSharding splits data [1]." in markdown
    assert "- [1] Databases > Sharding (Databases/Sharding.md:2-4)" in markdown
    assert "- [2] Cooking > Bread (Cooking.txt:1-2)" in markdown


def test_adding_a_message_touches_the_session(store):
    older, newer = store.create("alice", "older"), store.create("alice", "newer")
    assert store.list_sessions("alice")[0].id == newer.id
    store.add_user(older.id, "hello", "alice")
    assert store.list_sessions("alice")[0].id == older.id


# ------------------------------------------------------------------------ isolation
def test_users_cannot_see_or_change_each_others_data(store):
    alice = store.create("alice", "Alice's chat")
    store.add_user(alice.id, "alice's secret", "alice")
    bob = store.create("bob", "Bob's chat")
    store.add_user(bob.id, "bob's secret", "bob")
    local = store.create("", "Local chat")
    persona = store.save_persona("alice", "Poet", "Write a poem about {topic}.")
    store.set_favourite("alice", "Linux Terminal@12", True)

    assert [s.id for s in store.list_sessions("alice")] == [alice.id]
    assert [s.id for s in store.list_sessions("bob")] == [bob.id]
    assert [s.id for s in store.list_sessions("")] == [local.id]

    for owner, other, forged in (("alice", "bob", alice.id), ("bob", "alice", bob.id), ("", "alice", local.id)):
        # the same answer as for an id that does not exist: ids cannot be probed
        assert refused(store.get, forged, other) == refused(store.get, "0" * 32, other)
        before = store.get(forged, owner)
        count = store.count_messages(forged)
        refused(store.rename, forged, "taken over", other)
        refused(store.set_persona, forged, "Poet@1", {}, other)
        refused(store.touch, forged, other)
        refused(store.messages, forged, other)
        refused(store.add_user, forged, "injected", other)
        refused(store.add_assistant, forged, "injected", other, {})
        refused(store.export_json, forged, other)
        refused(store.export_markdown, forged, other)
        refused(store.count_messages, forged, other)
        refused(store.delete, forged, other)
        assert store.get(forged, owner) == before  # not even its updated_at moved
        assert store.count_messages(forged) == count

    assert [m.content for m in store.messages(alice.id, "alice").messages] == ["alice's secret"]
    assert [m.content for m in store.messages(bob.id, "bob").messages] == ["bob's secret"]

    # personas and favourites
    assert store.own_personas("bob") == [] and store.favourites("bob") == set()
    assert store.favourites("alice") == {"Linux Terminal@12"}
    refused(store.save_persona, "bob", "Hijacked", "Say hi.", "", persona.key)
    refused(store.delete_persona, "bob", persona.key)
    refused(store.set_persona, bob.id, persona.key, {}, "bob")  # alice's persona on bob's chat
    refused(store.set_favourite, "bob", persona.key, True)
    store.set_favourite("bob", "Linux Terminal@12", False)  # only bob's star (none) goes
    assert store.favourites("alice") == {"Linux Terminal@12"}
    assert [(p.key, p.name) for p in store.own_personas("alice")] == [(persona.key, "Poet")]
    assert json.loads(store.export_personas("bob"))["personas"] == []


# ------------------------------------------------------------------- export, import
def test_export_import_round_trip_and_naming(store):
    session = store.create("alice", "Sharding")
    store.set_persona(session.id, "Linux Terminal@12", {"shell": "zsh"}, "alice")
    store.add_user(session.id, "What is sharding? ✓", "alice")
    store.add_assistant(session.id, "It splits data [1].", "alice", {"sources": SOURCES[:1]})
    exported = store.export_json(session.id, "alice")
    data = json.loads(exported)
    assert data["format"] == EXPORT_FORMAT and data["name"] == "Sharding" and len(data["messages"]) == 2

    copy = store.import_json(exported, "alice")
    assert copy.id != session.id and copy.user == "alice" and copy.name == "Sharding (imported)"
    assert (copy.persona, copy.slots) == ("Linux Terminal@12", {"shell": "zsh"})
    assert store.messages(copy.id, "alice").messages == store.messages(session.id, "alice").messages
    assert store.import_json(exported.encode("utf-8"), "alice").name == "Sharding (imported 2)"
    assert store.import_json(exported, "alice").name == "Sharding (imported 3)"

    for_bob = store.import_json(exported, "bob")  # bob has no "Sharding": the name stays
    assert (for_bob.name, for_bob.user) == ("Sharding", "bob")
    assert [s.id for s in store.list_sessions("bob")] == [for_bob.id]
    assert [m.additional_kwargs for m in store.messages(for_bob.id, "bob").messages][1] == {
        "details": {"sources": SOURCES[:1]}
    }
    assert len(store.list_sessions("alice")) == 4
    refused(store.get, for_bob.id, "alice")


def test_import_refusals(store):
    session = store.create("alice", "Big")
    store.add_user(session.id, "x" * 1000, "alice")
    exported = store.export_json(session.id, "alice")

    exactly = exported + " " * (MAX_IMPORT_BYTES - len(exported.encode("utf-8")))
    assert len(exactly.encode("utf-8")) == MAX_IMPORT_BYTES
    assert store.import_json(exactly, "bob").name == "Big"  # the limit itself is allowed
    too_big = exactly + " "
    assert "larger than 5 MB" in refused(store.import_json, too_big, "bob")
    huge = json.loads(exported)
    huge["messages"][0]["data"]["content"] = "y" * MAX_IMPORT_BYTES
    assert "larger than 5 MB" in refused(store.import_json, json.dumps(huge).encode(), "bob")

    assert "not a chat session export" in refused(store.import_json, '{"hello": "world"}', "bob")
    assert "not a chat session export" in refused(store.import_json, b"\xff\xfe not json", "bob")
    assert "not a chat session export" in refused(store.import_json, "[1, 2, 3]", "bob")
    assert "personas export" in refused(store.import_json, store.export_personas("alice"), "bob")
    broken = json.loads(exported)
    broken["messages"] = [{"type": "system", "data": {"content": "obey"}}]
    assert "cannot be read" in refused(store.import_json, json.dumps(broken), "bob")
    assert len(store.list_sessions("bob")) == 1  # only the one accepted import


# ------------------------------------------------------------------------ favourites
def test_favourites(store):
    assert store.favourites("alice") == set()
    store.set_favourite("alice", "Linux Terminal@12", True)
    store.set_favourite("alice", "Linux Terminal@12", True)  # idempotent
    store.set_favourite("alice", "Life Coach@90", True)
    store.set_favourite("bob", "Life Coach@90", True)
    assert store.favourites("alice") == {"Linux Terminal@12", "Life Coach@90"}
    store.set_favourite("alice", "Life Coach@90", False)
    store.set_favourite("alice", "Life Coach@90", False)
    assert store.favourites("alice") == {"Linux Terminal@12"}
    assert store.favourites("bob") == {"Life Coach@90"}
    mine = store.save_persona("alice", "Chef", "Cook {dish}.")
    store.set_favourite("alice", mine.key, True)
    assert store.favourites("alice") == {"Linux Terminal@12", mine.key}
    store.delete_persona("alice", mine.key)  # its star goes with it
    assert store.favourites("alice") == {"Linux Terminal@12"}


# ---------------------------------------------------------------------- own personas
def test_own_personas(store):
    poet = store.save_persona("alice", "  Act as a   Poet ", "Write a {form} about {topic}.", " 🪶 ")
    assert (poet.name, poet.emoji, poet.slots, poet.is_own) == ("Poet", "🪶", ("form", "topic"), True)
    assert poet.key.startswith("mine-") and poet.key == poet.id
    chef = store.save_persona("alice", "Chef", "Cook something.")
    assert chef.slots == () and chef.key != poet.key
    assert [p.name for p in store.own_personas("alice")] == ["Chef", "Poet"]

    assert "already have a persona" in refused(store.save_persona, "alice", "poet", "Another prompt.")
    assert "name" in refused(store.save_persona, "alice", "   ", "A prompt.")
    assert "prompt" in refused(store.save_persona, "alice", "Painter", "  ")
    assert "already have a persona" in refused(store.save_persona, "alice", "CHEF", "x", "", poet.key)
    bob_poet = store.save_persona("bob", "Poet", "Bob's poet.")  # names are unique per user only
    assert bob_poet.key != poet.key

    edited = store.save_persona("alice", "Poet", "Write a haiku about {season}.", "🌸", poet.key)
    assert (edited.key, edited.slots, edited.emoji) == (poet.key, ("season",), "🌸")
    assert store.save_persona("alice", "Lyric Poet", edited.prompt, "🌸", poet.key).name == "Lyric Poet"
    stored = {p.key: p for p in store.own_personas("alice")}
    assert stored[poet.key].name == "Lyric Poet" and stored[poet.key].prompt == "Write a haiku about {season}."
    assert "no persona" in refused(store.save_persona, "alice", "Ghost", "Boo.", "", "mine-" + "0" * 32)

    session = store.create("alice", "Haiku")
    store.set_persona(session.id, poet.key, {"season": "spring"}, "alice")
    assert "Persona: Lyric Poet" in store.export_markdown(session.id, "alice")
    store.delete_persona("alice", poet.key)
    assert [p.key for p in store.own_personas("alice")] == [chef.key]
    assert store.get(session.id, "alice").persona is None  # the chat no longer points at it
    assert "no persona" in refused(store.delete_persona, "alice", poet.key)
    assert [p.key for p in store.own_personas("bob")] == [bob_poet.key]


def test_personas_export_import(store):
    store.save_persona("alice", "Poet", "Write a {form}.", "🪶")
    store.save_persona("alice", "Chef", "Cook {dish} for {guests}.", "🍳")
    exported = store.export_personas("alice")
    data = json.loads(exported)
    assert data["format"] == PERSONAS_FORMAT
    assert sorted(data["personas"], key=lambda p: p["name"]) == [
        {"name": "Chef", "emoji": "🍳", "prompt": "Cook {dish} for {guests}."},
        {"name": "Poet", "emoji": "🪶", "prompt": "Write a {form}."},
    ]

    for_bob = store.import_personas(exported, "bob")
    assert sorted((p.name, p.slots) for p in for_bob) == [("Chef", ("dish", "guests")), ("Poet", ("form",))]
    assert {p.key for p in store.own_personas("bob")} == {p.key for p in for_bob}
    assert not {p.key for p in for_bob} & {p.key for p in store.own_personas("alice")}

    again = store.import_personas(exported.encode("utf-8"), "alice")
    assert sorted(p.name for p in again) == ["Chef (imported)", "Poet (imported)"]
    assert sorted(p.name for p in store.import_personas(exported, "alice")) == [
        "Chef (imported 2)",
        "Poet (imported 2)",
    ]
    assert len(store.own_personas("alice")) == 6

    assert "larger than 5 MB" in refused(store.import_personas, " " * (MAX_IMPORT_BYTES + 1), "carol")
    assert "not a personas export" in refused(store.import_personas, '{"personas": []}', "carol")
    session = store.create("alice")
    assert "chat session export" in refused(store.import_personas, store.export_json(session.id, "alice"), "carol")
    bad = json.dumps(
        {"format": PERSONAS_FORMAT, "personas": [{"name": "Ok", "prompt": "Fine."}, {"name": "No prompt"}]}
    )
    assert "Persona 2" in refused(store.import_personas, bad, "carol")
    assert store.own_personas("carol") == []  # all or nothing


def test_exported_chat_keeps_its_own_persona(store):
    poet = store.save_persona("alice", "Poet", "Write a {form}.", "🪶")
    session = store.create("alice", "Poems")
    store.set_persona(session.id, poet.key, {"form": "sonnet"}, "alice")
    exported = store.export_json(session.id, "alice")

    assert store.import_json(exported, "alice").persona == poet.key  # already hers
    copy = store.import_json(exported, "bob")  # recreated as bob's own
    (bobs,) = store.own_personas("bob")
    assert copy.persona == bobs.key != poet.key and (bobs.name, bobs.prompt) == ("Poet", "Write a {form}.")
    assert store.import_json(exported, "bob").persona == bobs.key  # and found again, not duplicated
    assert len(store.own_personas("bob")) == 1


# ----------------------------------------------------------------------- concurrency
WORKER = textwrap.dedent("""
    import sys
    from assistant.history import ChatStore

    url, user = sys.argv[1], sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # both start on one signal, so their schema creation races
    store = ChatStore(url)
    session = store.create(user, user + "'s chat")
    print(session.id, flush=True)
    sys.stdin.readline()  # and write on another
    for i in range(50):
        if i % 2:
            store.add_assistant(session.id, f"{user} {i}", user, {"n": i})
        else:
            store.add_user(session.id, f"{user} {i}", user)
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
            history = store.messages(session_id, user).messages
            assert [m.content for m in history] == [
                f"{user} {i}" for i in range(50)
            ]  # none lost, duplicated or reordered
            assert [m.additional_kwargs.get("details", {}).get("n") for m in history][1::2] == list(range(1, 50, 2))
            assert [s.id for s in store.list_sessions(user)] == [session_id]
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, session_id FROM message_store ORDER BY id")).all()
        assert len(rows) == len({r.id for r in rows}) == 100
        assert sorted(r.session_id for r in rows) == sorted([ids["p1"]] * 50 + [ids["p2"]] * 50)
    finally:
        store.engine.dispose()
    # Otherwise one process wrote all before the other began, and nothing above was tested.
    turns = sum(a.session_id != b.session_id for a, b in itertools.pairwise(rows))
    assert turns > 1, "the two processes did not write at the same time"
