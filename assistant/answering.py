"""Turning retrieval into answers: grounded notes answers with citations, persona chat,
and extractive answers when there is no model (or the model fails).

`AnswerEngine.stream()` returns an `AnswerStream`: iterate it for the text as it comes, then
read `.answer` for the finished `Answer` (sources, mode, citations check). Chains are LCEL
(`prompt | model | parser`) over LangChain's chat model interface, so any provider, or a
fake model in tests, plugs in the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from .compose import Composer, Composition
from .followup import refers_back
from .passages import Passage
from .personas import Persona
from .prompts import condense_prompt, format_passages, notes_prompt, persona_prompt
from .providers import Provider
from .retrieval import Retriever, SearchResult
from .settings import Settings

AnswerMode = Literal["notes", "extractive", "persona", "persona-prompt", "persona-picked", "none"]
CITATION = re.compile(r"\[(\d{1,3})\]")
NOTHING = "Nothing relevant in your notes for this question."


@dataclass
class Answer:
    question: str
    text: str = ""
    mode: AnswerMode = "notes"
    sources: list[Passage] = field(default_factory=list)
    provider: str = ""
    persona: Persona | None = None
    suggestions: list[Persona] = field(default_factory=list)
    persona_probability: float = 0.0
    prompt: str | None = None  # a persona's filled prompt, ready to copy
    error: str | None = None
    verified: bool | None = None  # a model's notes answer cites only passages that exist
    stopped: bool = False  # generation ended by the user; `text` is what came before
    retrieved: list[Passage] = field(default_factory=list)  # what the search found, best first
    searched: str = ""  # what was searched: the question, folded with the previous one, or cut
    truncated: bool = False  # the question was longer than QUERY_MAX_CHARS

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "sources": [{"n": n, **p.to_dict()} for n, p in enumerate(self.sources, 1)],
            "persona": self.persona.name if self.persona else None,
            "persona_key": self.persona.key if self.persona else None,
            "suggestions": [p.name for p in self.suggestions],
            "suggestion_keys": [p.key for p in self.suggestions],
            "persona_probability": round(self.persona_probability, 4),
            "prompt": self.prompt,
            "provider": self.provider,
            "error": self.error,
            "verified": self.verified,
            "stopped": self.stopped,
            "searched": self.searched,
            "truncated": self.truncated,
        }


class AnswerStream:
    """The text of an answer as it is written; `.answer` is the finished `Answer`.

    Iterating runs the search first (`status` says "Searching your notes…"), then the model
    ("Writing…"). `stop()` ends generation and keeps what was written, marked as stopped.
    """

    def __init__(self, run: Iterator[str], answer: Answer):
        self._run = run
        self._answer = answer
        self._parts: list[str] = []
        self._done = False
        self.status = "Searching your notes…"

    def __iter__(self) -> Iterator[str]:
        for chunk in self._run:
            self.status = "Writing…"
            self._parts.append(chunk)
            yield chunk
        self._done = True
        self.status = "Done"

    def stop(self) -> Answer:
        if not self._done:
            self._run.close()
            self._done = True
            self._answer.stopped = True
            self._answer.text = "".join(self._parts).strip()
        return self._answer

    @property
    def answer(self) -> Answer:
        if not self._done:
            for _ in self:
                pass
        return self._answer

    def text(self) -> str:
        return self.answer.text


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


def check_citations(text: str, sources: int) -> bool:
    """A grounded answer cites at least one passage and only passages that exist."""
    cited = {int(n) for n in CITATION.findall(text)}
    return bool(cited) and all(1 <= n <= sources for n in cited)


class AnswerEngine:
    """Answers from the notes or as a persona; depends on the retriever, the composer of
    extractive answers, the settings and (optionally) a chat model."""

    def __init__(
        self,
        retriever: Retriever,
        composer: Composer,
        settings: Settings,
        model: BaseChatModel | None,
        provider: Provider,
    ):
        self.retriever = retriever
        self.composer = composer
        self.settings = settings
        self.model = model
        self.provider = provider

    # ------------------------------------------------------------------ public
    def ask(
        self,
        question: str,
        history: Sequence[BaseMessage] = (),
        persona: Persona | None = None,
        slots: dict[str, str] | None = None,
        own: Sequence[Persona] = (),
    ) -> Answer:
        return self.stream(question, history, persona, slots, own).answer

    def stream(
        self,
        question: str,
        history: Sequence[BaseMessage] = (),
        persona: Persona | None = None,
        slots: dict[str, str] | None = None,
        own: Sequence[Persona] = (),
    ) -> AnswerStream:
        """Raises `QueryError` at once for an empty question; everything else is in the stream.
        `own`: the asker's own personas, offered and picked like the notes' ones."""
        q = self.retriever.clean(question)
        answer = Answer(
            question=q,
            provider=self.provider.label,
            searched=q,
            truncated=len(" ".join(str(question).split())) > len(q),
        )
        history = plain_history(history)
        if persona is not None:
            return AnswerStream(self._persona_turn(answer, history, persona, slots or {}), answer)
        return AnswerStream(self._notes_turn(answer, history, own), answer)

    # -------------------------------------------------------------- notes turn
    def _notes_turn(self, answer: Answer, history: list[BaseMessage], own: Sequence[Persona]) -> Iterator[str]:
        result, folded = self._search(answer.question, history, own)
        answer.searched = result.query if folded else answer.searched
        answer.suggestions = result.suggestions
        answer.retrieved = result.passages
        answer.persona_probability = result.probabilities.get("persona", 0.0)
        if result.persona is not None and not folded:
            p = result.persona
            answer.persona, answer.mode, answer.prompt = p, "persona-picked", p.prompt
            answer.sources = result.passages[:1]
            answer.text = (
                f"This asks for a persona: {p.emoji} **{p.name}**. Use it in this chat to "
                f"role-play it, or copy its prompt."
            ).replace("  ", " ")
            yield answer.text
            return
        notes = [p for p in result.passages if p.kind == "note"]
        if not result.relevant or not notes:
            answer.mode, answer.text = "none", NOTHING
            yield answer.text
            return
        if self.model is None:
            answer.mode = "extractive"
            composition = self._compose(result)
            answer.text, answer.sources = composition.text, composition.sources
            yield answer.text
            return
        answer.sources = notes
        chain = notes_prompt | self.model | StrOutputParser()
        inputs = {"context": format_passages(notes), "question": answer.question, "history": history}
        yield from self._generate(answer, chain, inputs, fallback=lambda: self._compose(result))
        if answer.mode == "notes":
            answer.verified = check_citations(answer.text, len(answer.sources))

    def _search(self, q: str, history: list[BaseMessage], own: Sequence[Persona]) -> tuple[SearchResult, bool]:
        """The question alone, unless it refers back and retrieves better with what it refers to."""
        alone = self.retriever.search(q, own=own)
        previous = [str(m.content) for m in history if isinstance(m, HumanMessage)]
        if not previous or not refers_back(q):
            return alone, False
        standalone = None
        if self.model is not None:
            try:
                chain = condense_prompt | self.model | StrOutputParser()
                rewritten = chain.invoke({"history": history[-6:], "question": q}).strip()
                if rewritten and len(rewritten) < 500:
                    standalone = rewritten
            except Exception:
                standalone = None  # fold the previous question in instead
        folded = self.retriever.search(standalone or f"{previous[-1]} {q}", own=own)
        if _retrieval_strength(folded) > _retrieval_strength(alone):
            return folded, True
        return alone, False

    def _compose(self, result: SearchResult):
        analysis = result.analysis
        rows = [
            self.retriever.index.by_id[p.id]
            for p in result.passages
            if p.kind == "note" and p.id in self.retriever.index.by_id
        ]
        return self.composer.compose(
            result.query, analysis.notes_query, rows, analysis.crosslingual_query, known=analysis.signals.known
        )

    # ------------------------------------------------------------- persona turn
    def _persona_turn(
        self, answer: Answer, history: list[BaseMessage], persona: Persona, slots: dict[str, str]
    ) -> Iterator[str]:
        answer.persona, answer.mode = persona, "persona"
        missing = [s for s in persona.slots if not slots.get(s, "").strip()]
        prompt = persona.fill(slots)
        answer.prompt = prompt
        if missing and not history:
            answer.error = f"this persona needs values for: {', '.join(missing)}"
            answer.text = f"Before the first turn, give values for: {', '.join(missing)}."
            yield answer.text
            return
        if self.model is None:
            answer.mode = "persona-prompt"
            answer.text = (
                "Role-play needs a language model, and none is configured (`LLM_PROVIDER` in `.env`). "
                f"Until then, copy the {persona.name} prompt into any chat app."
            )
            yield answer.text
            return
        chain = persona_prompt | self.model | StrOutputParser()
        yield from self._generate(
            answer, chain, {"system": prompt, "history": history, "question": answer.question}, fallback=None
        )

    # ----------------------------------------------------------------- helpers
    def _generate(
        self, answer: Answer, chain: Runnable, inputs: dict, fallback: Callable[[], Composition] | None
    ) -> Iterator[str]:
        """Stream the model; a provider fault keeps the turn: extractive answer or the prompt."""
        parts: list[str] = []
        try:
            for chunk in chain.stream(inputs):
                parts.append(chunk)
                answer.text = "".join(parts)
                yield chunk
            answer.text = "".join(parts).strip()
            if not answer.text:
                raise ValueError("the model returned an empty answer")
        except GeneratorExit:
            raise
        except Exception as exc:  # a provider fault must not lose the turn
            answer.error = describe_error(exc, self.provider)
            if fallback is not None:
                composition = fallback()
                answer.mode, answer.sources = "extractive", composition.sources
                answer.text = f"⚠️ {answer.error}\n\nExtractive answer instead:\n\n{composition.text}"
            else:
                answer.text = f"⚠️ {answer.error}\n\nThe {answer.persona.name} prompt is above, ready to copy."
            yield ("\n\n" if parts else "") + answer.text


def _retrieval_strength(result: SearchResult) -> float:
    """How well a search found something: the best note's cosine under the notes model."""
    analysis = result.analysis
    return analysis.signals.notes_best if analysis is not None and analysis.signals is not None else 0.0


def plain_history(history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The conversation as a model should see it: the words only, not the stored details."""
    out: list[BaseMessage] = []
    for m in history:
        if isinstance(m, HumanMessage):
            out.append(HumanMessage(str(m.content)))
        elif isinstance(m, AIMessage):
            out.append(AIMessage(str(m.content)))
    return out
