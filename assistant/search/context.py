"""Which context a turn in a running chat is searched with: the message alone, or the message
joined with the conversation.

A message that is complete on its own ("what is a reverse proxy?" after a question on load
balancers) is searched alone, as in a new chat, so the previous topic cannot leak in and an
off-topic message gets "nothing relevant". A message that needs the conversation ("and its
disadvantages?", "und welche Nachteile gibt es?") is searched joined with the previous
question. The choice is a logistic regression over signals that mean the same in any language:
how decisively each of the two searches finds the notes, how close the message is to the
previous question under the cross-lingual model, how much of the two searches' best passages
agree, how long the message is. It is fitted on turns in context (`python -m training fit`)
and shipped as `data/context.json`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

import numpy as np

from assistant.core.personas import Persona
from assistant.search.retrieval import SearchPipeline, SearchResult
from assistant.search.router import MessageSignals
from assistant.search.signals import WORDS

Context = Literal["alone", "joined"]
CONTEXT_FILE: Final = Path(__file__).parent / "data" / "context.json"
TOP: Final = 5  # best passages compared between the two searches

CONTEXT_FEATURES: Final = (
    "alone_decisive",  # how far the message's own best passage stands out (both models)
    "joined_decisive",  # ... the joined search's
    "decisive_gain",  # joined minus alone
    "alone_notes_best",
    "alone_crosslingual_best",  # how close the message alone comes to any passage
    "joined_crosslingual_best",
    "previous_similarity",  # the message against the previous question, cross-lingual model
    "shared_top",  # share of the two searches' best passages in common
    "alone_top_in_joined",  # the message's own best passage is among the joined search's best
    "log_words",
    "known",  # share of the message's words found in the notes
    "question",
    "alone_none",  # the router's probability that the notes hold nothing for the message alone
    "alone_notes",
    "joined_notes",  # ... that they hold the joined search's answer
    "answer_similarity",  # the message against the previous answer's words, cross-lingual model
    "previous_minus_best",  # closer to the previous question than to any passage of the notes
    "referring",  # closeness to generic follow-up phrasing ("why is that?"), cross-lingual model
    "title_mention",  # the share of the message's words that name a section: it says its own topic
)


def decisiveness(signals: MessageSignals | None) -> float:
    """How far a search's best passage stands above the others, under both models (the notes
    model counted for the share of the message in the notes' words)."""
    if signals is None:
        return 0.0
    return signals.known * signals.notes_peak + signals.crosslingual_peak


def context_vector(
    alone: MessageSignals,
    joined: MessageSignals,
    alone_rows: list[int],
    joined_rows: list[int],
    previous_similarity: float,
    alone_routes: dict[str, float],
    joined_routes: dict[str, float],
    answer_similarity: float,
    referring: float,
) -> np.ndarray:
    """CONTEXT_FEATURES of one turn: the message's own search and the joined one."""
    a, j = decisiveness(alone), decisiveness(joined)
    top_a, top_j = alone_rows[:TOP], joined_rows[:TOP]
    shared = len(set(top_a) & set(top_j)) / TOP if top_a and top_j else 0.0
    return np.array(
        [
            a,
            j,
            j - a,
            alone.notes_best,
            alone.crosslingual_best,
            joined.crosslingual_best,
            previous_similarity,
            shared,
            float(bool(top_a) and top_a[0] in top_j),
            math.log1p(alone.words),
            alone.known,
            float(alone.question),
            alone_routes.get("none", 0.0),
            alone_routes.get("notes", 0.0),
            joined_routes.get("notes", 0.0),
            answer_similarity,
            previous_similarity - alone.crosslingual_best,
            referring,
            alone.title_mention,
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class ContextModel:
    """P(the message needs the conversation), a logistic regression on standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float = 0.5
    fitted_with: str = ""

    def probability(self, vector: np.ndarray) -> float:
        z = float(self.coef @ ((vector - self.mean) / self.scale) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def choose(self, vector: np.ndarray) -> Context:
        return "joined" if self.probability(vector) >= self.threshold else "alone"

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": list(CONTEXT_FEATURES),
                "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(),
                "coef": self.coef.round(6).tolist(),
                "intercept": round(self.intercept, 6),
                "threshold": self.threshold,
                "fitted_with": self.fitted_with,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> ContextModel:
        data = json.loads(text)
        if data.get("features") != list(CONTEXT_FEATURES):
            raise ValueError("the context file was fitted on other features: refit it with `python -m training fit`")
        return cls(
            mean=np.array(data["mean"]),
            scale=np.array(data["scale"]),
            coef=np.array(data["coef"]),
            intercept=float(data["intercept"]),
            threshold=float(data.get("threshold", 0.5)),
            fitted_with=data.get("fitted_with", ""),
        )

    @classmethod
    def load(cls, path: Path = CONTEXT_FILE) -> ContextModel:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path = CONTEXT_FILE) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- a turn's search
TOPICS: Final = 2  # passages nearest the previous turn whose topics a follow-up keeps to
# A message this close to the previous question (cross-lingual cosine) asks it again, after a
# re-ingest say: it is searched on its own. Turns that go on with a topic stay below 0.9.
REPEAT: Final = 0.95
QUOTE_POOL: Final = 30  # passages nearest the previous turn searched for its answer's quotes
QUOTE_MIN_WORDS: Final = 4
QUOTE_BREAK: Final = re.compile(r"\n|\s\.\.\.\s|…")  # lines, and quotes joined by an ellipsis


@dataclass(frozen=True)
class TurnSearch:
    """What a turn is answered from, and why: the message's own search, or the joined one."""

    result: SearchResult  # the search the answer uses
    alone: SearchResult  # the message's own search (what its answer's lines are weighed by)
    context: Context
    rows: tuple[int, ...] = ()  # the passages to answer from, best first (a follow-up's: its topic's)
    probability: float = 0.0  # P(the message needs the conversation); 0 without history


def ranked_rows(result: SearchResult) -> tuple[int, ...]:
    return tuple(r for r, _ in result.analysis.notes) if result.analysis is not None else ()


def previous_topics(pipeline: SearchPipeline, previous: str, answer: str) -> list[tuple[str, tuple[str, ...]]]:
    """The topics the previous turn was about: those of the passages its answer quoted word for
    word (an answer from the notes quotes them), else of the passages nearest to its question
    and its answer together (vectors the turn has already computed; no search)."""
    index = pipeline.index
    anchor = pipeline.crosslingual_vector(pipeline.clean(previous))
    if answer.strip():
        anchor = anchor + pipeline.passage_vector(answer)
    rows = index.note_rows
    if not len(rows) or not index.crosslingual_ready:
        return []
    order = np.argsort(-(index.xl_vectors[rows] @ anchor))
    quoted = [int(r) for r in rows[order[:QUOTE_POOL]] if quotes(answer, index.passages[int(r)].text)]
    nearest = quoted[:1] or [int(r) for r in rows[order[:TOPICS]]]
    topics = list(dict.fromkeys(index.topic_of(r) for r in nearest))
    # A topic that holds another is a whole area ("System Design" around "Write-through"): the narrower one says it.
    return [t for t in topics if not any(o != t and o[0] == t[0] and o[1][: len(t[1])] == t[1] for o in topics)]


def quotes(answer: str, text: str) -> bool:
    """The answer quotes the text: one of its lines (QUOTE_MIN_WORDS words or more) stands in it."""
    words = _words(text)
    parts = map(_words, QUOTE_BREAK.split(answer))
    return any(len(part.split()) >= QUOTE_MIN_WORDS and part in words for part in parts)


def _words(text: str) -> str:
    return " ".join(WORDS.findall(text.casefold()))


def keep_to(pipeline: SearchPipeline, rows: tuple[int, ...], topics: list) -> tuple[int, ...]:
    """The rows inside the topics (all of them when none is)."""
    kept = tuple(r for r in rows if any(pipeline.index.in_topic(r, t) for t in topics))
    return kept or rows


def turn_signals(
    pipeline: SearchPipeline, alone: SearchResult, joined: SearchResult, previous: str, answer: str = ""
) -> np.ndarray:
    """CONTEXT_FEATURES from the two searches of a turn (no third search: the previous question's
    cross-lingual vector is the one its own turn computed, kept by text)."""
    a, j = alone.analysis, joined.analysis
    previous_vector = pipeline.crosslingual_vector(pipeline.clean(previous))
    similarity = float(previous_vector @ a.crosslingual_query)
    answer_similarity = float(pipeline.passage_vector(answer) @ a.crosslingual_query) if answer.strip() else similarity
    return context_vector(
        a.signals,
        j.signals,
        [r for r, _ in a.notes],
        [r for r, _ in j.notes],
        similarity,
        alone.probabilities,
        joined.probabilities,
        answer_similarity,
        float((pipeline.referring @ a.crosslingual_query).max(initial=0.0)),
    )


def joined_text(previous: str, message: str) -> str:
    return f"{previous} {message}"


def search_turn(
    pipeline: SearchPipeline,
    message: str,
    previous: str | None,
    model: ContextModel | None,
    own: Sequence[Persona] = (),
    answer: str = "",
) -> TurnSearch:
    """Search a message in its chat: alone when it stands on its own (or there is no chat yet,
    or it names a persona), else joined with the previous question. At most two searches."""
    alone = pipeline.search(message, own=own)
    if not previous or model is None or alone.persona_reason == "name":
        return TurnSearch(result=alone, alone=alone, context="alone", rows=ranked_rows(alone))
    joined = pipeline.search(joined_text(previous, message), own=own)
    probability = model.probability(turn_signals(pipeline, alone, joined, previous, answer))
    asked_again = (
        float(pipeline.crosslingual_vector(pipeline.clean(previous)) @ alone.analysis.crosslingual_query) >= REPEAT
    )
    if probability < model.threshold or asked_again:  # a question asked again is asked afresh
        return TurnSearch(result=alone, alone=alone, context="alone", rows=ranked_rows(alone), probability=probability)
    # A message that needs the conversation goes on with its topic: the notes, never a persona,
    # and only the passages of the topic the previous turn was about.
    rows = keep_to(pipeline, ranked_rows(joined), previous_topics(pipeline, previous, answer))
    score = dict(joined.analysis.notes)
    passages = [pipeline.index.passages[r].with_score(score[r]) for r in rows[: len(joined.passages)]]
    result = replace(
        joined,
        route="notes",
        persona=None,
        persona_reason=None,
        suggestions=alone.suggestions,
        passages=passages or joined.passages,
    )
    return TurnSearch(result=result, alone=alone, context="joined", rows=rows, probability=probability)
