"""What answering produces: the events of a stream, and the finished `Answer`, frozen.

A front end iterates the events (a status, then the text as it is written) and then reads the
final `Answer`. The same record is stored with the chat message (`to_dict`) and read back to
redraw it (`from_dict`), so every front end shows what the engine decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.core.passages import Passage
from assistant.core.personas import PersonaRef

AnswerMode = Literal["notes", "extractive", "persona", "persona-prompt", "persona-picked", "none"]
Stage = Literal["searching", "writing"]
NOTES_MODES: tuple[AnswerMode, ...] = ("notes", "extractive")
# Under an answer from the notes, personas are offered only when the router gave the persona
# route at least this probability: below it, on plain notes questions, the offer is noise.
SUGGEST_MIN_PROBABILITY = 0.1
# A suggestion is shown when its probability is at least this share of the best persona's:
# a far-behind third (Plagiarism Checker after the Mechanic) is not worth a button.
SUGGESTION_MARGIN = 0.5


@dataclass(frozen=True)
class Answer:
    """One finished answer with everything a front end shows beside its text."""

    question: str
    text: str
    mode: AnswerMode
    sources: tuple[Passage, ...] = ()  # [n] in the text is sources[n-1]
    provider: str = ""  # what wrote it: "no model (…)", "ollama: llama3.2"
    where: str = ""  # where it was written: "on this machine", or the remote host
    persona: PersonaRef | None = None  # the persona offered (persona-picked) or in use
    suggestions: tuple[PersonaRef, ...] = ()  # other personas that may fit, with probabilities
    persona_probability: float = 0.0
    prompt: str | None = None  # a persona's filled prompt, ready to copy
    error: str | None = None
    verified: bool | None = None  # a model's notes answer cites only passages that exist
    stopped: bool = False  # generation ended by the user; `text` is what came before
    retrieved: tuple[Passage, ...] = field(default=(), compare=False)  # what the search found, best first
    searched: str = ""  # what was searched: the question, or joined with the conversation
    truncated: bool = False  # the question was longer than QUERY_MAX_CHARS
    removed: int = 0  # control characters taken out of the question before searching
    command: str | None = None  # the slash command the message was: "persona", "notes", "favourites"

    @property
    def cites_notes(self) -> bool:
        return self.mode in NOTES_MODES

    def close_suggestions(self) -> tuple[PersonaRef, ...]:
        """The suggestions worth showing: only when a persona is plausible at all, and only those
        within SUGGESTION_MARGIN of the best persona (the picked one, or the first suggestion)."""
        if self.mode in (*NOTES_MODES, "none") and self.persona_probability < SUGGEST_MIN_PROBABILITY:
            return ()
        picked = self.persona if self.mode == "persona-picked" else None
        scored = [p.probability for p in (picked, *self.suggestions) if p is not None and p.probability is not None]
        if not scored:
            return self.suggestions
        best = max(scored)
        return tuple(p for p in self.suggestions if p.probability is None or p.probability >= SUGGESTION_MARGIN * best)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "sources": [{"n": n, **p.to_dict()} for n, p in enumerate(self.sources, 1)],
            "provider": self.provider,
            "where": self.where,
            "persona": self.persona.to_dict() if self.persona else None,
            "suggestions": [s.to_dict() for s in self.suggestions],
            "persona_probability": round(self.persona_probability, 4),
            "prompt": self.prompt,
            "error": self.error,
            "verified": self.verified,
            "stopped": self.stopped,
            "searched": self.searched,
            "truncated": self.truncated,
            "removed": self.removed,
            "command": self.command,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, text: str = "") -> Answer:
        """Back from `to_dict` (a stored message); details it lacks take their defaults, and the
        shape of earlier versions (persona and suggestions as names and keys) is read too."""
        data = data if isinstance(data, dict) else {}
        persona = data.get("persona")
        if isinstance(persona, dict):
            ref = PersonaRef.from_dict(persona)
        elif isinstance(persona, str) and data.get("persona_key"):
            ref = PersonaRef(key=str(data["persona_key"]), name=persona)
        else:
            ref = None
        suggestions = data.get("suggestions") or []
        if suggestions and not isinstance(suggestions[0], dict):  # earlier versions: names, keys apart
            keys = data.get("suggestion_keys") or []
            suggestions = [{"key": k, "name": n} for k, n in zip(keys, suggestions)]
        mode = data.get("mode")
        return cls(
            question=str(data.get("question", "")),
            text=str(data.get("answer", text) or text),
            mode=mode if mode in AnswerMode.__args__ else "none",
            sources=tuple(Passage.from_dict(s) for s in data.get("sources") or [] if isinstance(s, dict)),
            provider=str(data.get("provider") or ""),
            where=str(data.get("where") or ""),
            persona=ref,
            suggestions=tuple(PersonaRef.from_dict(s) for s in suggestions if isinstance(s, dict)),
            persona_probability=float(data.get("persona_probability") or 0.0),
            prompt=data.get("prompt") if isinstance(data.get("prompt"), str) else None,
            error=data.get("error") if isinstance(data.get("error"), str) else None,
            verified=data.get("verified") if isinstance(data.get("verified"), bool) else None,
            stopped=bool(data.get("stopped")),
            searched=str(data.get("searched") or ""),
            truncated=bool(data.get("truncated")),
            removed=int(data.get("removed") or 0) if str(data.get("removed") or 0).isdigit() else 0,
            command=data.get("command") if isinstance(data.get("command"), str) else None,
        )


@dataclass(frozen=True)
class Status:
    """What the engine is doing now."""

    stage: Stage

    @property
    def label(self) -> str:
        return "Searching your notes…" if self.stage == "searching" else "Writing…"


@dataclass(frozen=True)
class TextChunk:
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class Done:
    """The finished answer; always the last event."""

    answer: Answer


AnswerEvent = Status | TextChunk | Done
