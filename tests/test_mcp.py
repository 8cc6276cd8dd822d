"""The MCP server (`python -m assistant mcp`) as a client meets it: the SDK's own client over
stdio (and once over streamable HTTP) against the real server on the bundled notes.

One server process serves the whole module (each start costs a second or two): its session
stays open on an event loop in a background thread, and the tests call it synchronously.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from assistant.mcp_server import URI_TEMPLATE, section_uri, slugify, unique_slugs
from tests.conftest import PROJECT
from tests.support import free_port, stop, wait_for_port

CALL_TIMEOUT = 120  # seconds; the first search loads the models
INHERITED = ("PATH", "HOME", "XDG_CACHE_HOME", "HF_HOME", "TMPDIR", "LANG")  # where the models are cached
CHARACTER = "character-from-movie-book-anything"  # "'Character' from 'Movie/Book/Anything'"
DAN = "unconstrained-ai-model-dan"
OWN_NAME = "Sourdough Coach"
OWN_PROMPT = "I want you to act as a sourdough coach for a {level} baker."
OTHER_USER, OTHER_PROMPT = "alice", "I want you to act as a guide to firing a pottery kiln."


def server_env(settings, **extra: str) -> dict[str, str]:
    """The server's environment: the test store, no model provider, no network."""
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    env.update(
        STORE_DIR=str(settings.store_dir),
        NOTES_PATH=str(settings.notes_path),
        LLM_PROVIDER="none",
        HF_HUB_OFFLINE="1",
    )
    return {**env, **extra}


def stdio_params(env: dict[str, str], *flags: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "assistant", "mcp", *flags], cwd=str(PROJECT), env=env
    )


class SyncSession:
    """A client session held open on its own event loop thread; `session.<method>(…)` runs the
    SDK coroutine there and returns its result (or raises its error), so plain tests can share
    one server process."""

    def __init__(self, params: StdioServerParameters, errlog: Path):
        self._params, self._errlog = params, errlog
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-client", daemon=True)
        self._thread.start()
        self._ready: asyncio.Future[ClientSession] | None = None
        self._closing: asyncio.Event | None = None
        self._held = asyncio.run_coroutine_threadsafe(self._hold(), self._loop)
        self.session = asyncio.run_coroutine_threadsafe(self._opened(), self._loop).result(CALL_TIMEOUT)

    async def _hold(self) -> None:
        """Open the transport and the session in one task (anyio wants them closed there too)."""
        self._closing = asyncio.Event()
        self._ready = self._loop.create_future()
        with self._errlog.open("a") as errlog:
            async with stdio_client(self._params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    self._ready.set_result(session)
                    await self._closing.wait()

    async def _opened(self) -> ClientSession:
        while self._ready is None:
            if self._held.done():
                self._held.result()  # the server did not start: say why
            await asyncio.sleep(0.01)
        return await self._ready

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.session, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self._loop).result(CALL_TIMEOUT)

        return call

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._closing.set)
        self._held.result(CALL_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()


def once(params: StdioServerParameters, errlog: Path, use: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """One short-lived server for one look (a flag or a setting of its own)."""

    async def run() -> Any:
        with errlog.open("a") as log:
            async with stdio_client(params, errlog=log) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await use(session)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def history_url(tmp_path_factory) -> str:
    """A history database holding an own persona of the local user, and one of another user."""
    from assistant.chat.store import ChatStore

    url = f"sqlite:///{tmp_path_factory.mktemp('mcp-history') / 'history.sqlite3'}"
    personas = ChatStore(url).personas
    personas.save("", OWN_NAME, OWN_PROMPT)
    personas.save(OTHER_USER, "Kiln Guide", OTHER_PROMPT)
    return url


@pytest.fixture(scope="module")
def client(bundled_settings, history_url, tmp_path_factory):
    errlog = tmp_path_factory.mktemp("mcp-server") / "stderr.txt"
    session = SyncSession(stdio_params(server_env(bundled_settings, HISTORY_DB_URL=history_url)), errlog)
    yield session
    session.close()


@pytest.fixture(scope="module")
def prompts(client) -> dict[str, Any]:
    return {p.name: p for p in client.list_prompts().prompts}


def error_text(result) -> str:
    assert result.is_error, result
    return result.content[0].text


# ----------------------------------------------------------------------------- names
def test_prompt_names_are_slugs_numbered_in_notes_order():
    assert slugify("'Character' from 'Movie/Book/Anything'") == CHARACTER
    assert slugify("Spongebob's Magic Conch Shell") == "spongebobs-magic-conch-shell"
    assert slugify("Speech-Language Pathologist (SLP)") == "speech-language-pathologist-slp"
    assert slugify("文言文") == "persona"
    taken: set[str] = set()
    assert unique_slugs(["Life Coach", "Chef", "Life Coach"], taken) == ["life-coach", "chef", "life-coach-2"]
    assert unique_slugs(["Chef"], taken, "my-") == ["my-chef"]


def test_section_uris_encode_each_segment():
    uri = section_uri("pages/Net.md", ["Net", "TCP/IP", "Fail-over / Active-passive"])
    assert uri == "notes://pages/Net.md/Net/TCP%2FIP/Fail-over%20%2F%20Active-passive"


# ---------------------------------------------------------------------------- prompts
def test_lists_every_visible_persona_with_a_description(prompts):
    assert len(prompts) >= 157  # 158 in the notes, the jailbreak hidden, plus the own one
    assert all(p.description and p.title for p in prompts.values())
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in prompts)
    coaches = [p for p in prompts.values() if p.title.endswith("Life Coach")]
    assert sorted(p.name for p in coaches) == ["life-coach", "life-coach-2"]
    assert DAN not in prompts
    terminal = prompts["linux-terminal"]
    assert terminal.title == "🐧 Linux Terminal"
    assert terminal.description.startswith("I will type commands")  # what it does, not "Act as …"


def test_jailbreak_prompts_only_when_asked(bundled_settings, history_url, tmp_path):
    params = stdio_params(server_env(bundled_settings, HISTORY_DB_URL=history_url), "--include-jailbreaks")
    names = once(params, tmp_path / "stderr.txt", lambda s: s.list_prompts())
    names = [p.name for p in names.prompts]
    assert DAN in names
    assert "life-coach-2" in names and CHARACTER in names  # the flag renames nothing


def test_prompt_with_slots_is_filled(client, prompts):
    listed = prompts[CHARACTER]
    assert [(a.name, a.required) for a in listed.arguments] == [("character", True), ("series", True)]
    result = client.get_prompt(CHARACTER, {"character": "Yoda", "series": "Star Wars"})
    text = result.messages[0].content.text
    assert result.messages[0].role == "user"
    assert "like Yoda from Star Wars" in text
    assert "{character}" not in text and "{series}" not in text
    assert result.description == listed.description


def test_missing_slot_is_a_clear_error(client):
    with pytest.raises(MCPError) as caught:
        client.get_prompt(CHARACTER, {"character": "Yoda"})
    assert caught.value.code == INVALID_PARAMS
    assert "'series'" in caught.value.message and CHARACTER in caught.value.message


def test_unknown_prompt_is_a_clear_error(client):
    with pytest.raises(MCPError) as caught:
        client.get_prompt("no-such-persona", {})
    assert caught.value.code == INVALID_PARAMS
    assert caught.value.message.startswith("Unknown prompt: 'no-such-persona'")


def test_own_persona_is_listed_with_its_slot(client, prompts):
    own = prompts["my-sourdough-coach"]
    assert "my-kiln-guide" not in prompts  # another user's
    assert [(a.name, a.required) for a in own.arguments] == [("level", True)]
    result = client.get_prompt("my-sourdough-coach", {"level": "beginner"})
    assert result.messages[0].content.text == "I want you to act as a sourdough coach for a beginner baker."


# ------------------------------------------------------------------------------ tools
def test_search_notes_gives_passages_with_their_place(client):
    result = client.call_tool("search_notes", {"query": "what is cache-aside", "k": 3})
    assert not result.is_error
    found = result.structured_content
    assert found["intent"] == "notes" and 1 <= len(found["passages"]) <= 3
    best = found["passages"][0]
    assert best["breadcrumb"].endswith("Cache-aside")
    assert best["source"].endswith(".txt") and 0 < best["first_line"] <= best["last_line"]
    assert best["uri"] == section_uri(best["source"], best["path"])


def test_search_notes_refuses_bad_arguments(client):
    assert "the query is empty" in error_text(client.call_tool("search_notes", {"query": "  "}))
    for k in (0, 51):
        message = error_text(client.call_tool("search_notes", {"query": "cache", "k": k}))
        assert f"k must be between 1 and 50, got {k}" in message
    missing = error_text(client.call_tool("search_notes", {"k": 3}))
    assert "query" in missing and "Traceback" not in missing


def test_answer_cites_the_notes(client):
    history = [{"role": "user", "content": "tell me about caching"}, {"role": "assistant", "content": "Sure."}]
    result = client.call_tool("answer", {"question": "what is cache-aside", "history": history})
    assert not result.is_error
    answer = result.structured_content
    assert answer["answer"].startswith("From your notes on")
    assert answer["mode"] == "extractive" and answer["sources"]
    assert any(s["breadcrumb"].endswith("Cache-aside") for s in answer["sources"])
    assert "the query is empty" in error_text(client.call_tool("answer", {"question": ""}))


def test_find_persona_reads_a_typo(client):
    result = client.call_tool("find_persona", {"text": "linx termnal"})
    assert not result.is_error
    pick = result.structured_content
    assert pick["persona"]["name"] == "Linux Terminal" and pick["persona"]["prompt"] == "linux-terminal"
    assert pick["reason"] == "name" and len(pick["suggestions"]) == 3
    assert all(s["prompt"] for s in pick["suggestions"])
    assert pick["probabilities"]["persona"] > 0.5
    assert pick["persona_probabilities"]["linux-terminal"] > 0.5


# -------------------------------------------------------------------------- resources
def test_sections_are_listed_and_read_as_markdown(client):
    assert [t.uri_template for t in client.list_resource_templates().resource_templates] == [URI_TEMPLATE]
    sections = client.list_resources().resources
    assert len(sections) > 300 and len({s.uri for s in sections}) == len(sections)
    cache = next(s for s in sections if s.name.endswith("> Cache-aside"))
    content = client.read_resource(cache.uri).contents[0]
    assert content.mime_type == "text/markdown"
    assert content.text.startswith("# Cache-aside\n") and "reading and writing from storage" in content.text
    slashed = next(s for s in sections if "/" in s.title)  # a title with "/" stays one segment
    assert client.read_resource(slashed.uri).contents[0].text.startswith(f"# {slashed.title}\n")


def test_unknown_section_is_a_clear_error(client):
    with pytest.raises(MCPError) as caught:
        client.read_resource("notes://no-such-file.md/Nothing")
    assert caught.value.code == INVALID_PARAMS
    assert "Unknown section: notes://no-such-file.md/Nothing" in caught.value.message


# ------------------------------------------------------------------------ without index
def test_without_an_index_every_call_says_make_ingest(bundled_settings, tmp_path):
    async def look(session: ClientSession) -> tuple[Any, ...]:
        with pytest.raises(MCPError) as caught:
            await session.list_prompts()
        tool = await session.call_tool("search_notes", {"query": "cache"})
        tools = await session.list_tools()
        return caught.value, tool, tools

    env = server_env(bundled_settings, STORE_DIR=str(tmp_path / "empty"))
    listing, tool, tools = once(stdio_params(env), tmp_path / "stderr.txt", look)
    assert listing.code == INTERNAL_ERROR and "run `make ingest`" in listing.message
    assert "run `make ingest`" in error_text(tool)
    assert {t.name for t in tools.tools} == {"search_notes", "answer", "find_persona"}


# ------------------------------------------------------------------------------- http
def test_streamable_http_for_another_user(bundled_settings, history_url, tmp_path):
    """Over HTTP, as the signed-in user "alice": her own personas, not the local user's. No call
    here loads a model (the stdio tests do), so the test costs the start alone."""
    port = free_port()
    command = [sys.executable, "-m", "assistant", "mcp", "--http", str(port), "--user", OTHER_USER]
    env = server_env(bundled_settings, HISTORY_DB_URL=history_url)
    with (tmp_path / "stderr.txt").open("w") as errlog:
        proc = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=errlog)
    try:
        wait_for_port(port, proc=proc)

        async def look() -> tuple[Any, ...]:
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    listed = await session.list_prompts()
                    filled = await session.get_prompt("my-kiln-guide", {})
                    sections = await session.list_resources()
                    tool = await session.call_tool("search_notes", {"query": "cache", "k": 0})
                    return listed, filled, sections, tool

        listed, filled, sections, tool = asyncio.run(look())
    finally:
        stop(proc)
    names = {p.name for p in listed.prompts}
    assert "my-kiln-guide" in names and "my-sourdough-coach" not in names
    assert filled.messages[0].content.text == OTHER_PROMPT
    assert len(sections.resources) > 300
    assert "k must be between" in error_text(tool)


# ------------------------------------------------------------------- one way to ask
def test_every_tool_takes_the_users_words_as_query(client):
    tools = {t.name: t for t in client.list_tools().tools}
    for name in ("search_notes", "answer", "find_persona"):
        assert "query" in tools[name].input_schema["properties"], name
    pick = client.call_tool("find_persona", {"query": "astrolger"}).structured_content
    assert pick["persona"]["name"] == "Astrologer"
    answered = client.call_tool("answer", {"query": "how does a reverse proxy help security?"}).structured_content
    assert answered["mode"] == "extractive" and answered["sources"]
    missing = error_text(client.call_tool("find_persona", {}))
    assert "query: required" in missing and "\n" not in missing


def test_the_answer_tools_slash_example_does_what_it_says(client):
    described = {t.name: t for t in client.list_tools().tools}["answer"].input_schema["properties"]["query"]
    assert "/linux terminal ls" not in described["description"]
    picked = client.call_tool("answer", {"query": "/linux terminal"}).structured_content
    assert picked["mode"] == "persona-picked" and picked["persona"]["name"] == "Linux Terminal" and picked["prompt"]
    notes = client.call_tool("answer", {"query": "/notes act as a cache"}).structured_content
    assert notes["mode"] == "extractive" and notes["sources"]


def test_refused_arguments_are_one_line_naming_the_field(client):
    for tool, arguments, field in (
        ("search_notes", {"query": "cache", "k": "many"}, "k"),
        ("answer", {"query": "what is a cdn?", "history": "not a list"}, "history"),
        ("find_persona", {"query": ["a", "list"]}, "query"),
    ):
        message = error_text(client.call_tool(tool, arguments))
        assert message.startswith(f"{tool}: {field}"), message
        assert "pydantic" not in message and "http" not in message and "\n" not in message, message
