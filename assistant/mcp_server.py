"""`python -m assistant mcp`: the notes and the persona catalog as an MCP server.

Any MCP client (Claude Desktop, an IDE, an agent) gets what the app offers, over stdio or, with
`--http PORT`, streamable HTTP on 127.0.0.1 at /mcp:

- Prompts: every persona of the catalog, and the user's own, by an MCP-friendly name. Its
  template slots are its (required) arguments; `prompts/get` returns the filled prompt as one
  user message. Prompts that are themselves jailbreaks are served only with `--include-jailbreaks`.
- Tools: `search_notes` (passages with breadcrumb, file and lines), `answer` (the grounded answer
  with citations, as the app writes it) and `find_persona` (the persona a name, a typo or a
  described need means, three suggestions and the probabilities).
- Resources: every section of the notes as Markdown, at `notes://<source>/<path…>`.

Prompt names (stable while the notes keep their personas; see `slugify`): the persona's name in
lowercase ASCII, words joined by "-" ("'Character' from 'Movie/Book/Anything'" ->
`character-from-movie-book-anything`). A name taken already gets "-2", "-3"… in notes order
("Life Coach" twice: `life-coach`, `life-coach-2`). Names are given over the whole catalog before
jailbreaks are hidden, so a flag never renames a prompt. The user's own personas come after the
catalog with the prefix `my-` (`my-sourdough-coach`): adding one never renames a notes persona.

Section URIs: `notes://` then the file (its folders as segments) then the section's path, each
segment percent-encoded on its own (RFC 3986, nothing kept), so a "/" inside a title is `%2F`:
`notes://000_85ef1cbe2e838ad0.txt/000_85ef1cbe2e838ad0/System%20Design/Cache-aside`. A server
reads the path percent-decoded (the template `notes://{+path}`) and finds the section by the
decoded form, file and path joined by "/"; `section_uri` makes the URI of a file and path.

Errors: bad arguments (an empty query, `k` out of range, an unknown prompt or section, a
missing slot) come back as MCP errors with a message meant for the user (a tool's as a result
with `is_error`), never a traceback. Without an index the server still starts; every call that
needs the notes then says to run `make ingest`.

Startup stays light: the service is built on first use (the catalog needs no model; search and
answers load the models on their first call).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import quote

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources import ResourceSecurity
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, GetPromptResult, PromptMessage, TextContent
from mcp_types import Prompt as MCPPrompt
from mcp_types import PromptArgument as MCPPromptArgument
from mcp_types import Resource as MCPResource
from pydantic import BaseModel, Field, ValidationError

from assistant.core.personas import Persona
from assistant.core.text import QueryError, to_markdown
from assistant.core.vectorstore import IndexMissingError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from assistant.chat.personas import OwnPersonas
    from assistant.core.sections import Section
    from assistant.search.retrieval import SearchResult
    from assistant.service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVER_NAME = "notes-prompt-assistant"
INSTRUCTIONS = (
    "A personal notes tree and a catalog of 'Act as …' persona prompts. Search or ask the notes "
    "with the tools (answers cite their passages), read a section at its notes:// URI, and use "
    "a persona through its prompt (find the right one with find_persona)."
)
URI_SCHEME = "notes://"
URI_TEMPLATE = URI_SCHEME + "{+path}"
MARKDOWN = "text/markdown"
HTTP_HOST = "127.0.0.1"  # loopback only: the notes and the history are personal
HTTP_PATH = "/mcp"
DEFAULT_K = 5
MAX_K = 50  # RETRIEVAL_K's own bounds
# `k`'s bounds, in the tool's schema for clients; the tool checks them itself, so that a value
# out of range gets one plain sentence rather than pydantic's report.
K_RANGE = {"minimum": 1, "maximum": MAX_K}
SLUG_MAX = 64  # characters of a prompt name before its "-2" suffix
OWN_PREFIX = "my-"
FALLBACK_SLUG = "persona"  # a name with no ASCII letter or digit at all
APOSTROPHES = re.compile(r"['’`]")
NOT_SLUG = re.compile(r"[^a-z0-9]+")
INDEX_MISSING = (
    "No index of the notes yet (in {store}): run `make ingest` (or `python -m ingest`) to build it, then call again."
)


# ---------------------------------------------------------------------------------- errors
class NotesError(Exception):
    """An expected failure whose message is for the user; `code` is its MCP error code."""

    code = INVALID_PARAMS


class BadArgument(NotesError):
    """A request that cannot be served as sent: the message says what to change."""


class NotesUnavailable(NotesError):
    """The server cannot serve the notes in its present state (no index yet)."""

    code = INTERNAL_ERROR


@contextmanager
def tool_errors() -> Iterator[None]:
    """A tool's expected failures as a `ToolError`: the client gets an `is_error` result with
    the message (an exception of any other kind would lose it)."""
    try:
        yield
    except NotesError as exc:
        raise ToolError(str(exc)) from None


@contextmanager
def request_errors() -> Iterator[None]:
    """Expected failures of prompts and resources as an `MCPError` with its message: any other
    exception reaches a client of the newer protocol as a bare "Internal server error"."""
    try:
        yield
    except NotesError as exc:
        raise MCPError(exc.code, str(exc)) from None


# ------------------------------------------------------------------------- names and URIs
def slugify(name: str) -> str:
    """An MCP-friendly name: lowercase ASCII letters and digits joined by "-" (accents
    dropped, apostrophes out, so "Spongebob's" stays one word), at most SLUG_MAX characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = NOT_SLUG.sub("-", APOSTROPHES.sub("", ascii_name).lower()).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rsplit("-", 1)[0] if "-" in slug[:SLUG_MAX] else slug[:SLUG_MAX]
    return slug or FALLBACK_SLUG


def unique_slugs(names: Sequence[str], taken: set[str], prefix: str = "") -> list[str]:
    """One slug per name, in order: the first keeps the bare slug, later ones get "-2", "-3"…
    `taken` is updated, so a second call never reuses a name of the first."""
    out = []
    for name in names:
        base = prefix + slugify(name)
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        out.append(slug)
    return out


def section_segments(source: str, path: Sequence[str]) -> list[str]:
    """The file's folders and name, then the section's path: the segments of its URI."""
    return [*source.split("/"), *path]


def section_uri(source: str, path: Sequence[str]) -> str:
    """The URI of a section: each segment percent-encoded alone, so titles keep their "/"."""
    return URI_SCHEME + "/".join(quote(segment, safe="") for segment in section_segments(source, path))


def section_address(source: str, path: Sequence[str]) -> str:
    """What the server receives of `section_uri` (the path percent-decoded): the lookup key."""
    return "/".join(section_segments(source, path))


# ------------------------------------------------------------------------- tool results
class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


class PersonaInfo(BaseModel):
    """A persona as a client uses it: the prompt to get, and what it does."""

    prompt: str | None = Field(
        description="Its MCP prompt name (prompts/get); null when not served (a jailbreak prompt)"
    )
    name: str
    emoji: str = ""
    summary: str = Field(description="What the persona does, in a sentence")
    slots: list[str] = Field(default_factory=list, description="The prompt's arguments")
    probability: float | None = Field(default=None, description="How likely the ranker found it")


class PersonaPick(BaseModel):
    """What `find_persona` found."""

    query: str
    persona: PersonaInfo | None = Field(description="The persona the text means, if one is clear")
    reason: str | None = Field(description="'name' (a name or a typo of one) or 'ranked' (a described need)")
    suggestions: list[PersonaInfo] = Field(description="Three other personas that may fit, best first")
    intent: str = Field(description="What the message is: 'persona', 'notes' or 'none'")
    probabilities: dict[str, float] = Field(description="The router's probability of each intent")
    persona_probabilities: dict[str, float] = Field(description="By prompt name: the ranker's choice probability")


class NotesHits(BaseModel):
    """What `search_notes` found."""

    query: str
    intent: str = Field(description="'notes' when the notes hold an answer, 'persona' or 'none' otherwise")
    message: str = Field(description="Why nothing is relevant, when that is so")
    passages: list[dict[str, Any]] = Field(
        description="Best first: id, path, breadcrumb, source (file), first_line, last_line, kind, score, "
        "text, and uri (the notes:// resource of its section; null for a persona's passage)"
    )


# ------------------------------------------------------------------------------- the notes
class Notes:
    """What the server serves, over one `Service` built on first use: personas as prompts,
    the tools' operations and the sections as resources. Every method raises `NotesError`
    for what the user can fix."""

    def __init__(self, service: Service | None = None, user: str = "", include_jailbreaks: bool = False):
        self._service = service
        self.user = user
        self.include_jailbreaks = include_jailbreaks
        self._lock = threading.Lock()
        self._sections: tuple[object, dict[str, Section]] | None = None  # (tree, address -> section)

    @property
    def service(self) -> Service:
        """The service, built on first use: starting the server loads nothing."""
        with self._lock:
            if self._service is None:
                from assistant.service import Service

                self._service = Service()
            return self._service

    @contextmanager
    def guard(self) -> Iterator[Service]:
        """The service for one call, on the latest index; its known failures as `NotesError`."""
        service = self.service
        try:
            service.reload_if_reingested()  # `make ingest` ran meanwhile: serve its index
            yield service
        except IndexMissingError:
            raise NotesUnavailable(INDEX_MISSING.format(store=service.settings.store_dir)) from None
        except QueryError as exc:
            raise BadArgument(str(exc)) from None

    # ---------------------------------------------------------------- personas
    def own(self) -> list[Persona]:
        """The user's own personas (read at each call: the app may add one meanwhile)."""
        return self._from_history(lambda personas: personas.own(self.user), [])

    def favourites(self) -> set[str]:
        """The keys of the personas the user starred, which a bare "/" lists."""
        return self._from_history(lambda personas: personas.favourites(self.user), set())

    def _from_history(self, read: Callable[[OwnPersonas], T], default: T) -> T:
        """What the history database says, or `default` when it cannot be read: the notes
        are still worth serving, and stderr says why."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return read(self.service.chats.personas)
        except SQLAlchemyError as exc:
            log.warning("own personas and favourites left out: the history database cannot be read (%s)", exc)
            return default

    def named_personas(self) -> list[tuple[str, Persona]]:
        """Every persona with its prompt name (module docstring), jailbreaks included."""
        with self.guard() as service:
            catalog = service.catalog.personas
        own = self.own()
        taken: set[str] = set()
        names = unique_slugs([p.name for p in catalog], taken) + unique_slugs([p.name for p in own], taken, OWN_PREFIX)
        return list(zip(names, [*catalog, *own]))

    def prompts(self) -> dict[str, Persona]:
        """The personas served as prompts, by prompt name, in catalog order then own."""
        return {name: p for name, p in self.named_personas() if self.include_jailbreaks or not p.is_jailbreak}

    def prompt(self, name: str) -> Persona:
        """The persona served under `name`; a hidden jailbreak is as unknown as a typo."""
        persona = self.prompts().get(name)
        if persona is None:
            raise BadArgument(f"Unknown prompt: {name!r} (prompts/list gives the names)")
        return persona

    def fill(self, name: str, arguments: dict[str, str] | None) -> tuple[Persona, str]:
        """The persona's prompt with its slots filled; every slot needs a value (a prompt with a
        slot left in it would read "{character}" to the model)."""
        persona = self.prompt(name)
        values = {k: str(v) for k, v in (arguments or {}).items()}
        unknown = sorted(set(values) - set(persona.slots))
        if unknown:
            wanted = ", ".join(persona.slots) or "none"
            extra = ", ".join(map(repr, unknown))
            raise BadArgument(f"Prompt {name!r} has no argument {extra} (its arguments: {wanted})")
        missing = [s for s in persona.slots if not values.get(s, "").strip()]
        if missing:
            raise BadArgument(f"Prompt {name!r} needs the argument(s) {', '.join(map(repr, missing))}")
        return persona, persona.fill(values)

    # ------------------------------------------------------------------- tools
    def search(self, query: str, k: int) -> NotesHits:
        """The routed search (`search --json`), each passage with its section's URI; the user's
        own personas take part in the routing as in the app."""
        if not 1 <= k <= MAX_K:
            raise BadArgument(f"k must be between 1 and {MAX_K}, got {k}")
        with self.guard() as service:
            result = service.search(query, k, self.own())
            passages = [with_uri(p.to_dict()) for p in result.passages]
        return NotesHits(query=result.query, intent=result.route, message=result.message, passages=passages)

    def answer(self, question: str, history: Sequence[Turn] = ()) -> dict[str, Any]:
        """The app's answer record (`Answer.to_dict`, as `ask --json` prints it): the same
        engine, the user's own personas and favourites, so slash commands work as in the app."""
        with self.guard() as service:
            stream = service.stream(question, messages_of(history), own=self.own(), favourites=self.favourites())
            data = stream.answer.to_dict()
            data["error"] = data["error"] or service.provider_error
        data["sources"] = [with_uri(s) for s in data["sources"]]
        return data

    def find_persona(self, text: str) -> PersonaPick:
        """The router's reading of `text` (a name, a typo, a need), the user's personas included."""
        with self.guard() as service:
            result = service.search(text, own=self.own())
        return self.pick(result)

    def pick(self, result: SearchResult) -> PersonaPick:
        """A search result as personas a client can use: each by its prompt name."""
        served = {p.key: name for name, p in self.prompts().items()}
        chances = result.persona_probabilities

        def info(p: Persona) -> PersonaInfo:
            return PersonaInfo(
                prompt=served.get(p.key),
                name=p.name,
                emoji=p.emoji,
                summary=p.summary,
                slots=list(p.slots),
                probability=chances.get(p.key),
            )

        shown = ([result.persona] if result.persona else []) + result.suggestions
        return PersonaPick(
            query=result.query,
            persona=info(result.persona) if result.persona else None,
            reason=result.persona_reason,
            suggestions=[info(p) for p in result.suggestions],
            intent=result.route,
            probabilities={k: round(v, 4) for k, v in result.probabilities.items()},
            persona_probabilities={served.get(p.key, p.key): chances[p.key] for p in shown if p.key in chances},
        )

    # --------------------------------------------------------------- sections
    def sections(self) -> dict[str, Section]:
        """Every section by the decoded form of its URI; built again after a re-ingest."""
        with self.guard() as service:
            tree = service.sections
        cached = self._sections
        if cached is None or cached[0] is not tree:
            found: dict[str, Section] = {}
            for section in tree.all():
                address = section_address(section.source, section.path)
                if address in found:  # only titles holding "/" where a sibling path spells the same
                    log.warning("two sections at %s%s: the first is served", URI_SCHEME, address)
                    continue
                found[address] = section
            self._sections = cached = (tree, found)
        return cached[1]

    def section(self, address: str) -> Section:
        """The section at a decoded notes:// path, or an error that says where to find them."""
        section = self.sections().get(address)
        if section is None:
            raise BadArgument(f"Unknown section: {URI_SCHEME}{address} (resources/list gives the sections)")
        return section

    def section_markdown(self, address: str) -> str:
        """A section as Markdown: its title, where it is, its own text and links to its
        sub-sections (their own resources), so a client can walk the tree."""
        section = self.section(address)
        with self.guard() as service:
            tree = service.sections
            first, last = tree.span(section)
            body = to_markdown(tree.text(section, whole=False)).strip()
        parts = [f"# {section.title}", f"{section.breadcrumb or section.source} ({section.source}:{first}-{last})"]
        if body:
            parts.append(body)
        if section.children:
            links = [f"- [{c.title}]({section_uri(c.source, c.path)})" for c in section.children]
            parts.append("## Sub-sections\n\n" + "\n".join(links))
        return "\n\n".join(parts) + "\n"

    def resources(self) -> list[MCPResource]:
        """Every section, in notes order, for resources/list."""
        out = []
        with self.guard() as service:
            tree = service.sections
            for section in self.sections().values():
                first, last = tree.span(section)
                out.append(
                    MCPResource(
                        uri=section_uri(section.source, section.path),
                        name=section.breadcrumb or section.source,
                        title=section.title,
                        description=f"{section.source}:{first}-{last}",
                        mime_type=MARKDOWN,
                    )
                )
        return out


def with_uri(passage: dict[str, Any]) -> dict[str, Any]:
    """A passage (`Passage.to_dict`) with the URI of its section, to read the whole of it; a
    persona's passage has none (personas are prompts, not sections)."""
    uri = section_uri(passage["source"], passage["path"]) if passage.get("kind") == "note" else None
    return {**passage, "uri": uri}


def messages_of(history: Sequence[Turn]) -> list[BaseMessage]:
    """The conversation as the answer engine takes it."""
    from langchain_core.messages import AIMessage, HumanMessage

    return [HumanMessage(t.content) if t.role == "user" else AIMessage(t.content) for t in history]


def persona_prompt(name: str, persona: Persona) -> MCPPrompt:
    """A persona as prompts/list shows it: its label as the title, what it does as the
    description (the title alone, "Act as a Linux Terminal", says less), its slots as arguments."""
    arguments = [
        MCPPromptArgument(name=slot, description=f"Fills {{{slot}}} in the prompt", required=True)
        for slot in persona.slots
    ]
    label = f"{persona.emoji} {persona.name}".strip()
    return MCPPrompt(name=name, title=label, description=persona.summary, arguments=arguments)


def either(query: str | None, former: str | None, former_name: str) -> str:
    """The user's words from `query`, or from the parameter's former name."""
    value = query if query is not None else former
    if value is None:
        raise BadArgument(f"query: required, the user's words as text (`{former_name}` is accepted too)")
    return value


def argument_problem(tool: str, error: ValidationError) -> str:
    """A tool's refused arguments in one line: each field and what it accepts (no links)."""
    parts = []
    for e in error.errors(include_url=False):
        field = ".".join(str(x) for x in e["loc"] if x != tool + "Arguments") or "arguments"
        parts.append(f"{field}: {e['msg'].rstrip('.').lower()}")
    return f"{tool}: " + "; ".join(parts)


# ------------------------------------------------------------------------------ the server
class NotesServer(MCPServer):
    """MCPServer whose prompts and resources come from the notes when asked, not at start (the
    user's own personas may change while it runs), with clear errors instead of the stock ones."""

    def __init__(self, notes: Notes):
        super().__init__(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING")
        self.notes = notes

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """The stock call, but arguments it refuses are named in one line, without pydantic's links."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_problem(name, exc.__cause__)) from None
            raise

    async def list_prompts(self) -> list[MCPPrompt]:
        """The personas at the time of asking (off the event loop: the catalog is a file)."""
        with request_errors():
            prompts = await anyio.to_thread.run_sync(self.notes.prompts)
        return [persona_prompt(name, p) for name, p in prompts.items()]

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Any = None
    ) -> GetPromptResult:
        """The filled prompt as one user message; an unknown name or a missing slot is
        INVALID_PARAMS with a message (the stock path turns them into "Internal server error")."""
        with request_errors():
            persona, text = await anyio.to_thread.run_sync(self.notes.fill, name, arguments)
        message = PromptMessage(role="user", content=TextContent(type="text", text=text))
        return GetPromptResult(description=persona.summary, messages=[message])

    async def list_resources(self) -> list[MCPResource]:
        """Every section, listed when asked: a few hundred resources made at start would cost
        loading the index before the client even says hello."""
        with request_errors():
            return await anyio.to_thread.run_sync(self.notes.resources)


def build_server(service: Service | None = None, user: str = "", include_jailbreaks: bool = False) -> NotesServer:
    """The server with its tools and the section template; nothing is loaded yet."""
    notes = Notes(service, user, include_jailbreaks)
    server = NotesServer(notes)

    @server.tool()
    def search_notes(
        query: Annotated[str, Field(description="What to look for in the notes")],
        k: Annotated[int, Field(description="How many passages to return", json_schema_extra=K_RANGE)] = DEFAULT_K,
    ) -> NotesHits:
        """Search the personal notes: the best passages, each with its breadcrumb, file and
        lines, and the notes:// URI of its section. `intent` says whether the notes hold an
        answer ('notes') or the query asks for a persona or matches nothing."""
        with tool_errors():
            return notes.search(query, k)

    @server.tool()
    def answer(
        query: Annotated[
            str | None,
            Field(
                description="The question; '/notes <question>' asks the notes whatever it sounds like, "
                "'/<persona name>' (typos welcome) picks that persona and returns its prompt"
            ),
        ] = None,
        history: Annotated[
            list[Turn] | None, Field(description="Earlier turns, oldest first, for a follow-up question")
        ] = None,
        question: Annotated[str | None, Field(description="The former name of `query`, still accepted")] = None,
    ) -> dict[str, Any]:
        """Answer from the notes as the app does: the text cites its sources as [n], and
        `sources[n-1]` gives each passage's breadcrumb, file and lines. A persona's name in the
        question offers that persona's prompt instead (`mode` says which)."""
        with tool_errors():
            return notes.answer(either(query, question, "question"), history or ())

    @server.tool()
    def find_persona(
        query: Annotated[
            str | None, Field(description="A persona's name (typos welcome) or the need it should serve")
        ] = None,
        text: Annotated[str | None, Field(description="The former name of `query`, still accepted")] = None,
    ) -> PersonaPick:
        """Find the persona a name, a typo or a described need means: the pick (if one is
        clear), three suggestions and the probabilities; get one with prompts/get by its
        `prompt` name."""
        with tool_errors():
            return notes.find_persona(either(query, text, "text"))

    # Section paths are keys of a dict, never of the file system: titles such as
    # "Reimagine - https://…" must not be refused as absolute paths.
    @server.resource(
        URI_TEMPLATE,
        name="section",
        title="A section of the notes",
        description="A section of the notes as Markdown: notes://<file>/<path…>, each segment percent-encoded",
        mime_type=MARKDOWN,
        security=ResourceSecurity(exempt_params={"path"}),
    )
    def read_section(path: str) -> str:
        try:
            return notes.section_markdown(path)
        except NotesUnavailable as exc:
            raise MCPError(exc.code, str(exc)) from None
        except NotesError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    return server


def serve(
    service: Service | None = None, http_port: int | None = None, user: str = "", include_jailbreaks: bool = False
) -> None:
    """Run the server until the client goes: stdio (the client starts this process), or
    streamable HTTP on the loopback port. Only the protocol may go to stdout, so the one
    line of news goes to stderr."""
    server = build_server(service, user, include_jailbreaks)
    if http_port is None:
        server.run()
        return
    print(f"MCP server on http://{HTTP_HOST}:{http_port}{HTTP_PATH}", file=sys.stderr, flush=True)
    server.run("streamable-http", host=HTTP_HOST, port=http_port, streamable_http_path=HTTP_PATH)
