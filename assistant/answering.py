"""Turning retrieval into answers: grounded notes answers with citations, persona chat,
and extractive answers when there is no model (or the model fails).

Chains are LCEL (`prompt | model | parser`) over LangChain's chat model interface, so
any provider, or a fake model in tests, plugs in the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser

from .personas import Persona
from .prompts import condense_prompt, format_passages, notes_prompt, persona_prompt
from .providers import Provider
from .retrieval import Passage
from .text import clean_query

FOLLOW_UP = re.compile(
    r"^(?:and|but|also|what about|how about|then|so|or)\b|\b(?:it|its|it's|they|them|their|this|that|these|those|"
    r"the former|the latter|same)\b",
    re.IGNORECASE,
)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[`*])")


@dataclass
class Answer:
    question: str
    text: str = ""
    sources: list[Passage] = field(default_factory=list)
    provider: str = ""
    persona: Persona | None = None
    mode: str = "notes"  # notes | extractive | persona | persona-picked | none
    error: str | None = None
    prompt: str | None = None  # a persona's filled prompt, ready to copy

    def to_dict(self) -> dict:
        return {
            "answer": self.text,
            "sources": [
                {"n": n, "path": p.path, "breadcrumb": p.breadcrumb, "source": p.source,
                 "first_line": p.first_line, "last_line": p.last_line, "text": p.text}
                for n, p in enumerate(self.sources, 1)
            ],
            "persona": self.persona.name if self.persona else None,
            "provider": self.provider,
            "mode": self.mode,
            "error": self.error,
        }


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


class AnswerEngine:
    def __init__(self, assistant, model: BaseChatModel | None, provider: Provider):
        self.assistant = assistant
        self.model = model
        self.provider = provider

    # ------------------------------------------------------------------ public
    def ask(self, question: str, history: Sequence[BaseMessage] = (), persona: Persona | None = None,
            slots: dict[str, str] | None = None) -> Answer:
        final = None
        for item in self.stream(question, history, persona, slots):
            if isinstance(item, Answer):
                final = item
        return final

    def stream(self, question: str, history: Sequence[BaseMessage] = (), persona: Persona | None = None,
               slots: dict[str, str] | None = None) -> Iterator[str | Answer]:
        """Text chunks as they come, then the finished `Answer` as the last item."""
        q = clean_query(question, self.assistant.settings.query_max_chars)
        history = plain_history(history)
        if persona is not None:
            yield from self._persona_turn(q, list(history), persona, slots or {})
            return
        query = self._retrieval_query(q, list(history))
        result = self.assistant.search(query)
        answer = Answer(question=q, sources=result.passages, provider=self.provider.label)
        if result.persona is not None and query == q:
            p = result.persona
            answer.persona, answer.mode, answer.prompt = p, "persona-picked", p.prompt
            answer.sources = result.passages[:1]
            answer.text = (f"This asks for a persona: {p.emoji} **{p.name}**. Use it in this chat to "
                           f"role-play it, or copy its prompt.")
            yield answer.text
            yield answer
            return
        if not result.relevant or not result.passages:
            answer.mode, answer.sources = "none", []
            answer.text = "Nothing relevant in your notes for this question."
            yield answer.text
            yield answer
            return
        if self.model is None:
            answer.mode = "extractive"
            answer.text = self.extractive(q, result.passages)
            yield answer.text
            yield answer
            return
        chain = notes_prompt | self.model | StrOutputParser()
        inputs = {"context": format_passages(result.passages), "question": q, "history": list(history)}
        try:
            parts = []
            for chunk in chain.stream(inputs):
                parts.append(chunk)
                yield chunk
            answer.text = "".join(parts).strip()
            if not answer.text:
                raise ValueError("the model returned an empty answer")
        except Exception as exc:  # a provider fault must not lose the turn
            answer.error = describe_error(exc, self.provider)
            answer.mode = "extractive"
            fallback = self.extractive(q, result.passages)
            answer.text = f"⚠️ {answer.error}\n\nExtractive answer instead:\n\n{fallback}"
            yield "\n\n" + answer.text
        yield answer

    # ----------------------------------------------------------------- helpers
    def _retrieval_query(self, q: str, history: list[BaseMessage]) -> str:
        """Follow-ups ("and its disadvantages?") are searched with what they refer to."""
        previous = [m.content for m in history if isinstance(m, HumanMessage)]
        if not previous or not (FOLLOW_UP.search(q) or len(q.split()) <= 3):
            return q
        if self.model is not None:
            try:
                chain = condense_prompt | self.model | StrOutputParser()
                rewritten = chain.invoke({"history": history[-6:], "question": q}).strip()
                if rewritten and len(rewritten) < 500:
                    return rewritten
            except Exception:
                pass  # fold the previous turn in instead
        return f"{previous[-1]} {q}"

    def _persona_turn(self, q: str, history: list[BaseMessage], persona: Persona, slots: dict[str, str]):
        answer = Answer(question=q, provider=self.provider.label, persona=persona, mode="persona")
        missing = [s for s in persona.slots if not slots.get(s, "").strip()]
        prompt = persona.fill(slots)
        answer.prompt = prompt
        if missing and not history:
            answer.error = f"this persona needs values for: {', '.join(missing)}"
            answer.text = f"Before the first turn, give values for: {', '.join(missing)}."
            yield answer.text
            yield answer
            return
        if self.model is None:
            answer.text = ("Role-play needs a language model, and none is configured (LLM_PROVIDER). "
                           f"Here is the {persona.name} prompt, ready to copy:\n\n```text\n{prompt}\n```")
            yield answer.text
            yield answer
            return
        chain = persona_prompt | self.model | StrOutputParser()
        try:
            parts = []
            for chunk in chain.stream({"system": prompt, "history": history, "question": q}):
                parts.append(chunk)
                yield chunk
            answer.text = "".join(parts).strip()
            if not answer.text:
                raise ValueError("the model returned an empty answer")
        except Exception as exc:
            answer.error = describe_error(exc, self.provider)
            answer.text = f"⚠️ {answer.error}\n\nThe {persona.name} prompt, to use elsewhere:\n\n```text\n{prompt}\n```"
            yield "\n\n" + answer.text
        yield answer

    def extractive(self, question: str, passages: list[Passage]) -> str:
        """The best passage in full with its most relevant sentences in bold, then the other sources.

        Every sentence comes from the notes; only the labels are ours.
        """
        best = passages[0]
        lines = best.text.split("\n")
        units: list[tuple[int, str]] = []
        for i, line in enumerate(lines):
            for piece in SENTENCE.split(line.strip().removeprefix("- ").strip()):
                if len(re.findall(r"\w+", piece)) >= 3:
                    units.append((i, piece))
        marked = set()
        if units:
            emb = self.assistant.embeddings
            vectors = np.asarray(emb.embed_documents([question] + [u for _, u in units]), dtype=np.float32)
            sims = vectors[1:] @ vectors[0]
            top = [j for j in np.argsort(-sims)[:2] if sims[j] >= 0.25]
            marked = {units[j] for j in top}
        out_lines = []
        for i, line in enumerate(lines):
            for idx, piece in marked:
                if idx == i and piece in line and "**" not in piece:
                    line = line.replace(piece, f"**{piece}**", 1)
            out_lines.append(line)
        text = [f"From your notes, **{best.breadcrumb}** [1]:", "", "\n".join(out_lines)]
        if len(passages) > 1:
            text += ["", "Further sources:"]
            text += [f"- [{n}] {p.breadcrumb}" for n, p in enumerate(passages[1:], 2)]
        return "\n".join(text)


def plain_history(history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The conversation as a model should see it: the words only, not the stored details."""
    out: list[BaseMessage] = []
    for m in history:
        if isinstance(m, HumanMessage):
            out.append(HumanMessage(str(m.content)))
        elif isinstance(m, AIMessage):
            out.append(AIMessage(str(m.content)))
    return out
