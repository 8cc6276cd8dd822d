"""Turning a message into an answer: route it, then answer from the notes or as a persona.

Routing (persona, notes or none) is a step of its own. Notes answers then run one LCEL
chain with the `NotesRetriever` as a runnable: `grounded_chain` when a model writes the
answer (its passages numbered, cited as [n]), `extractive_chain` when there is no model
(the answer quoted from the notes). Either plugs into a LangChain program of your own.

`AnswerEngine.stream()` returns an `AnswerStream`: iterate it for events (a status, the text
as it is written, then `Done` with the frozen `Answer`), or read `.answer` at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, trim_messages
from langchain_core.output_parsers import StrOutputParser
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough

from assistant.answer import commands
from assistant.answer.compose import Composer, Composition
from assistant.answer.prompts import format_documents, notes_prompt, persona_prompt
from assistant.answer.providers import Provider
from assistant.answer.records import Answer, AnswerEvent, AnswerMode, Done, Status, TextChunk
from assistant.core.passages import Passage
from assistant.core.personas import Persona, PersonaRef
from assistant.core.settings import Settings
from assistant.core.text import FORMAT_TOKEN_PATTERN, control_characters, uncapped_query
from assistant.search.context import ContextModel, search_turn
from assistant.search.retrieval import NotesRetriever, SearchPipeline, from_document, to_document

CITATION = re.compile(r"\[(\d{1,3})\]")
NOTHING = "Nothing relevant in your notes for this question."
# Prompt-format tokens a small model copies into its output: chat-template markers and the
# tags that fence the passages. They are never part of an answer.
FORMAT_TAGS = re.compile(
    rf"</?passages>|{FORMAT_TOKEN_PATTERN}|</?s>|^\s*(?:assistant|user|system)\s*:\s*",
    re.IGNORECASE | re.MULTILINE,
)
# Modes of the assistant's turns that a model wrote; the app's own messages (persona offers,
# "nothing relevant", quoted notes) are never shown to a model as its turns.
MODEL_TURNS: tuple[AnswerMode, ...] = ("notes", "persona")
BYTES_PER_TOKEN = 3  # a conservative token estimate where no tokenizer is at hand (utf-8 bytes / 3)


def check_citations(text: str, sources: int) -> bool:
    """A grounded answer cites at least one passage and only passages that exist."""
    cited = {int(n) for n in CITATION.findall(text)}
    return bool(cited) and all(1 <= n <= sources for n in cited)


def strip_format_tags(text: str) -> str:
    return FORMAT_TAGS.sub("", text)


def estimate_tokens(text: str) -> int:
    """Tokens of `text`, over-estimated: English runs about 4 bytes a token, CJK 3 bytes a character."""
    return len(text.encode("utf-8")) // BYTES_PER_TOKEN + 1


def describe_error(exc: BaseException, provider: Provider) -> str:
    """A short message for the user; never the API key (only the exception's kind and text)."""
    kind = type(exc).__name__
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    text = re.sub(r"(sk-|Bearer\s+)[A-Za-z0-9_\-]{6,}", r"\1***", text)
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403) or "Authentication" in kind or "PermissionDenied" in kind:
        hint = "the server refused the API key"
    elif "Timeout" in kind:
        hint = "the server did not answer in time (LLM_TIMEOUT)"
    elif "Connect" in kind or "Connection" in kind:
        hint = "the server could not be reached"
    elif status == 404 or "NotFound" in kind:
        hint = "the server does not know this model or endpoint"
    else:
        hint = "the model call failed"
    return f"{provider.label}: {hint} ({kind}: {text})" if text else f"{provider.label}: {hint} ({kind})"


def model_history(history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The conversation as a model should see it: the user's turns and the model's own, words
    only. The app's offers, notices and quoted notes are left out, so a model never copies them."""
    out: list[BaseMessage] = []
    for m in history:
        if isinstance(m, HumanMessage):
            out.append(HumanMessage(str(m.content)))
        elif isinstance(m, AIMessage):
            details = m.additional_kwargs.get("details")
            mode = details.get("mode") if isinstance(details, dict) else None
            if mode is None or mode in MODEL_TURNS:  # no details: a history given by a caller
                out.append(AIMessage(str(m.content)))
    return out


def fit_history(history: Sequence[BaseMessage], budget_tokens: int, count: Callable[[str], int]) -> list[BaseMessage]:
    """The newest turns that fit in `budget_tokens`, starting on a user turn (LangChain's trimmer)."""
    if budget_tokens <= 0 or not history:
        return []
    return trim_messages(
        list(history),
        max_tokens=budget_tokens,
        token_counter=lambda msgs: sum(count(str(m.content)) + 4 for m in msgs),
        strategy="last",
        start_on="human",
        allow_partial=False,
    )


# ------------------------------------------------------------------------------ chains
def grounded_chain(
    retriever: BaseRetriever,
    model: BaseChatModel,
    fit: Callable[[list[BaseMessage], str, str], list[BaseMessage]] | None = None,
) -> Runnable:
    """{question, history?, search?, documents?} -> {documents, answer}: the passages numbered in
    the prompt, the model's answer citing them as [n]; streams the documents, then the answer.

    `documents`, when given, are the passages (the turn already chose them); else the retriever
    is given `search` (default: the question); `fit(history, context, question)` trims the
    history to the window."""

    def history(x: dict) -> list[BaseMessage]:
        turns = list(x.get("history") or [])
        return fit(turns, x["context"], x["question"]) if fit is not None else turns

    search = RunnableLambda(lambda x: x.get("search") or x["question"])
    retrieve = RunnableLambda(
        lambda x: x["documents"] if x.get("documents") is not None else (search | retriever).invoke(x)
    )
    prompt_inputs = RunnablePassthrough.assign(context=lambda x: format_documents(x["documents"])).assign(
        history=history
    )
    return RunnablePassthrough.assign(documents=retrieve).assign(
        answer=prompt_inputs | notes_prompt | model | StrOutputParser()
    )


def extractive_chain(retriever: BaseRetriever, composer: Composer) -> Runnable:
    """{question, focus?, said?} -> Composition: the answer quoted from the retriever's passages
    for `question` (no model). Lines are weighed by `focus` (default: the question): a follow-up
    searched with its conversation is answered by what the follow-up itself asks. Lines of
    `said` (what the chat already quoted) are not quoted again while others are left."""
    documents = itemgetter("question") | retriever
    return RunnableParallel(
        documents=documents,
        focus=lambda x: x.get("focus") or x["question"],
        said=lambda x: x.get("said") or "",
    ) | RunnableLambda(lambda x: composer.compose_documents(x["focus"], x["documents"], said=x["said"]))


# ------------------------------------------------------------------------------ stream
@dataclass
class _Draft:
    """An answer while the engine writes it; `freeze()` makes the record."""

    question: str
    provider: Provider
    text: str = ""
    mode: AnswerMode = "notes"
    sources: list[Passage] = field(default_factory=list)
    persona: PersonaRef | None = None
    suggestions: list[PersonaRef] = field(default_factory=list)
    persona_probability: float = 0.0
    prompt: str | None = None
    error: str | None = None
    verified: bool | None = None
    retrieved: list[Passage] = field(default_factory=list)
    searched: str = ""
    truncated: bool = False
    removed: int = 0
    command: str | None = None
    rows: tuple[int, ...] = ()  # the passages the turn answers from, best first (not part of the answer)
    said: str = ""  # what the chat already quoted, for a follow-up (not part of the answer)

    def freeze(self, stopped: bool = False) -> Answer:
        return Answer(
            question=self.question,
            text=self.text.strip(),
            mode=self.mode,
            sources=tuple(self.sources),
            provider=self.provider.label,
            where=self.provider.where,
            persona=self.persona,
            suggestions=tuple(self.suggestions),
            persona_probability=self.persona_probability,
            prompt=self.prompt,
            error=self.error,
            verified=self.verified,
            stopped=stopped,
            retrieved=tuple(self.retrieved),
            searched=self.searched,
            truncated=self.truncated,
            removed=self.removed,
            command=self.command,
        )


class AnswerStream:
    """The events of one answer. Iterate it (`Status`, `TextChunk`s, then `Done`), or read
    `.answer`, which runs it to the end. `stop()` ends generation and keeps what was written."""

    def __init__(self, run: Iterator[AnswerEvent], draft: _Draft):
        self._run = run
        self._draft = draft
        self._answer: Answer | None = None

    def __iter__(self) -> Iterator[AnswerEvent]:
        for event in self._run:
            if isinstance(event, Done):
                self._answer = event.answer
            yield event

    def text(self) -> Iterator[str]:
        """Only the text, as it comes (what `st.write_stream` takes)."""
        for event in self:
            if isinstance(event, TextChunk):
                yield event.text

    def stop(self) -> Answer:
        if self._answer is None:
            self._run.close()
            self._answer = self._draft.freeze(stopped=True)
        return self._answer

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
        return self._answer


# ------------------------------------------------------------------------------ engine
class AnswerEngine:
    """Answers from the notes or as a persona; gets the search pipeline, the composer of
    quoted answers, the settings and (optionally) a chat model with its provider."""

    def __init__(
        self,
        pipeline: SearchPipeline,
        composer: Composer,
        settings: Settings,
        model: BaseChatModel | None,
        provider: Provider,
        count_tokens: Callable[[str], int] = estimate_tokens,
        context_tokens: int | None = None,
        context_model: ContextModel | None = None,
    ):
        self.pipeline = pipeline
        self.composer = composer
        self.settings = settings
        self.model = model
        self.provider = provider
        self.count_tokens = count_tokens
        self.context_tokens = context_tokens or settings.context_tokens
        self.context_model = context_model  # which turns need the conversation (None: every turn alone)
        self.retriever = NotesRetriever(pipeline=pipeline, k=settings.retrieval_k)
        # Quoted answers choose from twice as many passages: some hold only headings or
        # templates, which the composer passes over.
        self.quote_retriever = NotesRetriever(pipeline=pipeline, k=2 * settings.retrieval_k)

    def ask(
        self,
        question: str,
        history: Sequence[BaseMessage] = (),
        persona: Persona | None = None,
        slots: dict[str, str] | None = None,
        own: Sequence[Persona] = (),
        favourites: Sequence[Persona] = (),
    ) -> Answer:
        return self.stream(question, history, persona, slots, own, favourites).answer

    def stream(
        self,
        question: str,
        history: Sequence[BaseMessage] = (),
        persona: Persona | None = None,
        slots: dict[str, str] | None = None,
        own: Sequence[Persona] = (),
        favourites: Sequence[Persona] = (),
    ) -> AnswerStream:
        """Raises `QueryError` at once for an empty question; everything else is in the stream.
        `own`: the asker's own personas, offered and picked like the notes' ones; `favourites`:
        what "/" alone lists. A slash command ("/linux terminal", "/notes …") is read first."""
        command = commands.parse(question, lambda name: self.pipeline.find_persona(name, own))
        if command is not None and command.kind == "persona" and command.rest:
            persona, question = command.persona, command.rest
        asked = question if command is None or command.kind != "notes" else command.rest or question
        q = self.pipeline.clean(asked)
        draft = _Draft(
            question=q,
            provider=self.provider,
            searched=q,
            truncated=len(uncapped_query(asked)) > len(q),  # what was asked, not the "/notes"
            removed=control_characters(asked),
        )
        turns = model_history(history)
        if command is not None:
            draft.command = command.kind
        if command is not None and command.kind == "favourites":
            run = self._favourites(draft, favourites, own)
        elif command is not None and command.kind == "persona" and not command.rest:
            run = self._picked(draft, command.persona)
        elif command is not None and command.kind == "notes":  # "/notes …" asks the notes in any chat
            run = self._notes_turn(draft, list(history), turns, own, forced=True)
        elif persona is not None:
            run = self._persona_turn(draft, turns, persona, slots or {})
        else:
            run = self._notes_turn(draft, list(history), turns, own)
        return AnswerStream(run, draft)

    def _favourites(self, d: _Draft, favourites: Sequence[Persona], own: Sequence[Persona]) -> Iterator[AnswerEvent]:
        d.mode = "none"
        if not len(self.pipeline.space_for(own)):
            d.text = "Your notes hold no persona prompts: ask them a question instead."
        elif favourites:
            d.text = "Your favourite personas (type / and a name to use one):\n" + "\n".join(
                f"- {p.emoji} /{p.name}".replace("  ", " ") for p in favourites
            )
        else:
            d.text = "You have no favourite personas yet: star some in the Personas view, or type / and any name."
        yield from _said(d)

    def _picked(self, d: _Draft, persona: Persona) -> Iterator[AnswerEvent]:
        d.persona, d.mode, d.prompt = persona.ref(), "persona-picked", persona.prompt
        d.text = f"Now chatting with {persona.emoji} **{persona.name}**.".replace("  ", " ")
        yield from _said(d)

    # -------------------------------------------------------------- notes turn
    def _notes_turn(
        self,
        d: _Draft,
        history: list[BaseMessage],
        turns: list[BaseMessage],
        own: Sequence[Persona],
        forced: bool = False,
    ) -> Iterator[AnswerEvent]:
        yield Status("searching")
        previous = [str(m.content) for m in history if isinstance(m, HumanMessage)]
        said = [str(m.content) for m in history if isinstance(m, AIMessage)]
        turn = search_turn(
            self.pipeline,
            d.question,
            previous[-1] if previous else None,
            self.context_model,
            own,
            answer=said[-1] if said else "",
        )
        result = turn.result
        if forced:  # "/notes …": the notes answer, whatever the message sounds like
            result = replace(result, route="notes", persona=None, persona_reason=None)
        folded = turn.context == "joined"
        d.searched = result.query if folded else d.searched
        d.rows = turn.rows
        d.said = "\n".join(str(m.content) for m in history if isinstance(m, AIMessage)) if folded else ""
        d.suggestions = [p.ref(result.persona_probabilities.get(p.key)) for p in result.suggestions]
        d.retrieved = list(result.passages)
        d.persona_probability = result.probabilities.get("persona", 0.0)
        if result.persona is not None and not folded:
            p = result.persona
            d.persona, d.mode, d.prompt = p.ref(result.persona_probabilities.get(p.key)), "persona-picked", p.prompt
            d.sources = list(result.passages[:1])
            d.text = (
                f"This asks for a persona: {p.emoji} **{p.name}**. Use it in this chat to role-play it, "
                "or copy its prompt."
            ).replace("  ", " ")
            yield from _said(d)
            return
        notes = [p for p in result.passages if p.kind == "note"]
        if not result.relevant or not notes:
            d.mode, d.text = "none", NOTHING
            yield from _said(d)
            return
        if self.model is None:
            d.mode = "extractive"
            composition = self._compose(d)
            d.text, d.sources = composition.text, list(composition.sources)
            yield from _said(d)
            return
        yield from self._grounded(d, turns)

    def _grounded(self, d: _Draft, turns: list[BaseMessage]) -> Iterator[AnswerEvent]:
        def fit(history: list[BaseMessage], context: str, question: str) -> list[BaseMessage]:
            fixed = self.count_tokens(notes_prompt.format(context=context, question=question, history=[]))
            return fit_history(history, self.context_tokens - self.settings.llm_max_tokens - fixed, self.count_tokens)

        chain = grounded_chain(self.retriever, self.model, fit)
        passages = self.pipeline.index.passages
        documents = [to_document(passages[r]) for r in d.rows[: self.settings.retrieval_k]] if d.rows else None
        inputs = {"question": d.question, "search": d.searched, "history": turns, "documents": documents}

        def generate() -> Iterator[str]:
            for chunk in chain.stream(inputs):
                if "documents" in chunk:
                    d.sources = [from_document(doc) for doc in chunk["documents"]]
                if "answer" in chunk:
                    yield chunk["answer"]

        yield from self._generate(d, generate, fallback=lambda: self._compose(d))
        if d.mode == "notes":
            d.verified = check_citations(d.text, len(d.sources))
        yield Done(d.freeze())

    def _compose(self, d: _Draft) -> Composition:
        if d.rows:  # the passages the turn chose: quoted without searching again
            focus = self.pipeline.message(self.pipeline.clean(d.question))  # the message, not the joined search
            rows = list(d.rows[: 2 * self.settings.retrieval_k])
            return self.composer.compose(focus, rows, d.said, d.question)
        inputs = {"question": d.searched, "focus": d.question, "said": d.said}
        return extractive_chain(self.quote_retriever, self.composer).invoke(inputs)

    # ------------------------------------------------------------ persona turn
    def _persona_turn(
        self, d: _Draft, turns: list[BaseMessage], persona: Persona, slots: dict[str, str]
    ) -> Iterator[AnswerEvent]:
        d.persona, d.mode = persona.ref(), "persona"
        missing = [s for s in persona.slots if not slots.get(s, "").strip()]
        prompt = persona.fill(slots)
        d.prompt = prompt
        if missing and not turns:
            d.error = f"this persona needs values for: {', '.join(missing)}"
            d.text = f"Before the first turn, give values for: {', '.join(missing)}."
            yield from _said(d)
            return
        if self.model is None:
            d.mode = "persona-prompt"
            d.text = (
                "Role-play needs a language model, and none is configured (`LLM_PROVIDER` in `.env`). "
                f"Until then, copy the {persona.name} prompt into any chat app. To ask your notes instead, "
                "start the message with `/notes`, or drop the persona."
            )
            yield from _said(d)
            return
        chain = persona_prompt | self.model | StrOutputParser()
        fixed = self.count_tokens(prompt) + self.count_tokens(d.question)
        budget = self.context_tokens - self.settings.llm_max_tokens - fixed
        inputs = {"system": prompt, "history": fit_history(turns, budget, self.count_tokens), "question": d.question}
        yield from self._generate(d, lambda: chain.stream(inputs), fallback=None)
        yield Done(d.freeze())

    # ----------------------------------------------------------------- helpers
    def _generate(
        self, d: _Draft, stream: Callable[[], Iterator[str]], fallback: Callable[[], Composition] | None
    ) -> Iterator[AnswerEvent]:
        """Stream the model, format tags stripped; a provider fault keeps the turn: the quoted
        answer instead, or the persona's prompt to copy."""
        yield Status("writing")
        parts: list[str] = []
        try:
            for chunk in stream():
                clean = strip_format_tags(chunk)
                parts.append(clean)
                d.text = "".join(parts)
                if clean:
                    yield TextChunk(clean)
            d.text = strip_format_tags("".join(parts)).strip()
            if not d.text:
                raise ValueError("the model returned an empty answer")
        except GeneratorExit:
            raise
        except Exception as exc:  # a provider fault must not lose the turn
            d.error = describe_error(exc, self.provider)
            if fallback is not None:
                composition = fallback()
                d.mode, d.sources = "extractive", list(composition.sources)
                d.text = f"⚠️ {d.error}\n\nExtractive answer instead:\n\n{composition.text}"
            else:
                d.text = f"⚠️ {d.error}\n\nThe {d.persona.name} prompt is above, ready to copy."
            yield TextChunk(("\n\n" if parts else "") + d.text)


def _said(d: _Draft) -> Iterator[AnswerEvent]:
    """An answer written at once (no model streaming it): its text, then the record."""
    yield TextChunk(d.text)
    yield Done(d.freeze())
