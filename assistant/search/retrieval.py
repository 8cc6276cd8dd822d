"""The search pipeline: which persona a message means, and the note passages that answer it.

1. A persona's exact or misspelt name decides at once (rapidfuzz, no model).
2. Otherwise both models embed the message (markup stripped: tags are not the question).
   Note passages are ranked by their closeness under both models added (the cross-lingual
   model lets a question in any language reach English notes), fused by reciprocal rank with
   the section titles the message spells. Personas are
   ranked by a fitted linear model over both models' scores, their contrast with the nearest
   other personas, name windows and emoji (`router.py`).
3. One fitted decision says persona, notes or none. Whatever it says, the best three other
   personas come back as suggestions; prompts that are themselves jailbreaks never do.

`NotesRetriever` is the notes half as a LangChain `BaseRetriever`: the one way every front end
and the answer chains get passages. The analysis of a message is kept for a while (a small
LRU), so routing it and then retrieving for it embeds it once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from rapidfuzz import fuzz, process

from assistant.core.embeddings import DIMENSIONS, E5Embeddings
from assistant.core.passages import Passage
from assistant.core.personas import Persona, normalize_name
from assistant.core.settings import Settings
from assistant.core.text import clean_query
from assistant.search import signals
from assistant.search.index import Index
from assistant.search.persona_space import PersonaScores, PersonaSpace
from assistant.search.router import Decision, MessageSignals, Route, Router, rank_matrix, route_vector

PersonaReason = Literal["name", "ranked"]

# Reciprocal-rank fusion of the note rankings: score += 1 / (RRF_K + rank), every ranking alike.
RRF_K = 60  # the usual constant of Cormack et al.; damps the difference between close ranks
POOL = 30  # candidates each ranking contributes
NAME_MATCH = 85.0  # rapidfuzz ratio of a whole message to a name: a typo, not another word
TITLE_MATCH = 90.0  # ratio of a whole message to a section title
TITLE_HITS = 10
SUBSET_MAX_WORDS = 6  # "r interpreter" names part of one persona; longer messages are sentences
SUGGESTIONS = 3
PASSAGE_CHARS = 1000  # of a previous answer, compared with a follow-up (its opening says its topic)
ANALYSES_KEPT = 64  # recent messages whose analysis is kept (a route and its retrieval share one)
OWN_SPACES_KEPT = 32  # distinct sets of own personas kept embedded (one per signed-in user, roughly)
# A request's head: up to the first clause break in any script ("sé mi asesor legal: me
# despidieron…" -> "sé mi asesor legal"). It names the role; the rest describes the need.
CLAUSE_BREAK = re.compile(r"[,:;.!?，。：；、？！\n]|\s[-–—]\s")


def peak(similarities: np.ndarray) -> float:
    """How many standard deviations the best similarity stands above the mean."""
    if len(similarities) < 2:
        return 0.0
    return float((similarities.max() - similarities.mean()) / (similarities.std() + 1e-6))


def head_clause(text: str) -> str:
    head = CLAUSE_BREAK.split(text.strip(), maxsplit=1)[0].strip()
    return head if signals.WORDS.search(head) else text


def top_rows(scores: np.ndarray, rows: np.ndarray, k: int) -> list[int]:
    """The `k` best of `rows` by `scores` (aligned with `rows`), best first, ties in notes order."""
    if not len(rows):
        return []
    k = min(k, len(rows))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
    part = part[np.lexsort((part, -scores[part]))]
    return [int(rows[i]) for i in part]


@dataclass
class SearchResult:
    query: str
    route: Route
    persona: Persona | None = None
    persona_reason: PersonaReason | None = None
    suggestions: list[Persona] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    probabilities: dict[Route, float] = field(default_factory=dict)
    # Which persona, if any: the ranker's choice probabilities (softmax of its scores, the
    # Bradley-Terry reading of a pairwise logistic ranker), for the picked one and suggestions.
    persona_probabilities: dict[str, float] = field(default_factory=dict)
    analysis: Analysis | None = field(default=None, repr=False, compare=False)

    @property
    def relevant(self) -> bool:
        return self.route != "none"

    @property
    def message(self) -> str:
        return "Nothing relevant in your notes for this query." if self.route == "none" else ""

    def to_prediction(self) -> dict[str, Any]:
        """The evaluation line format of ../shared/eval/README.md."""
        return {
            "query": self.query,
            "persona": self.persona.name if self.persona else None,
            "suggestions": [p.name for p in self.suggestions],
            "passages": [p.to_prediction() for p in self.passages],
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, for `search --json`."""
        return {
            **self.to_prediction(),
            "intent": self.route,
            "persona_reason": self.persona_reason,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "persona_probabilities": self.persona_probabilities,
            "message": self.message,
            "passages": [p.to_dict() for p in self.passages],
        }


T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """A message as the notes see it, whoever asks: its embeddings, notes and signals."""

    notes_query: np.ndarray
    crosslingual_query: np.ndarray
    head_query: np.ndarray  # the head clause under the cross-lingual model (a request's verb)
    notes: list[tuple[int, float]]
    signals: MessageSignals


@dataclass
class Analysis:
    """What is known of a message before the decision: what the router is fitted on."""

    text: str
    name_match: Persona | None
    space: PersonaSpace | None = None  # the personas it was scored against
    notes_query: np.ndarray | None = None  # the message under the notes model
    crosslingual_query: np.ndarray | None = None  # ... and under the cross-lingual model
    scores: PersonaScores | None = None
    matrix: np.ndarray | None = None  # RANK_FEATURES, one row per persona
    rank: np.ndarray | None = None  # the ranker's score per persona (None before any fit)
    signals: MessageSignals | None = None
    notes: list[tuple[int, float]] = field(default_factory=list)

    @property
    def route_features(self) -> np.ndarray:
        return route_vector(self.rank, self.scores, self.signals)

    def ranked_personas(self) -> list[Persona]:
        """Best first; prompts that are themselves jailbreaks are never among them."""
        if self.rank is None or self.space is None:
            return []
        return [self.space.personas[int(i)] for i in np.argsort(-self.rank) if not self.space.jailbreak[int(i)]]


class SearchPipeline:
    """Routing and notes retrieval over one loaded index and both embedding models."""

    def __init__(self, index: Index, notes_model: Embeddings, crosslingual: E5Embeddings, router: Router | None):
        self.index = index
        self.notes_model = notes_model
        self.crosslingual = crosslingual
        self.router = router
        self.settings: Settings = index.settings
        catalog = index.catalog
        notes_vectors = (
            np.stack([index.vectors[index.row_of_persona[p.key]] for p in catalog.personas])
            if len(catalog)
            else np.zeros((0, index.vectors.shape[1]), dtype=np.float32)
        )
        cross = np.stack([index.persona_crosslingual(p.key) for p in catalog.personas]) if len(catalog) else None
        names = (
            np.stack([index.name_vectors.get(p.key, np.zeros(DIMENSIONS, dtype=np.float32)) for p in catalog.personas])
            if len(catalog)
            else None
        )
        empty = np.zeros((0, DIMENSIONS), dtype=np.float32)
        self._notes_space = PersonaSpace(
            catalog, notes_vectors, cross if cross is not None else empty, names if names is not None else empty
        )
        self._spaces: OrderedDict[tuple, PersonaSpace] = OrderedDict()  # own personas -> space (LRU)
        self._space_lock = threading.Lock()
        self._injection = crosslingual.embed_queries(list(signals.INJECTION_EXAMPLES))
        self._errand = crosslingual.embed_queries(list(signals.ERRAND_EXAMPLES))
        self._role_request = crosslingual.embed_queries(list(signals.ROLE_REQUEST_EXAMPLES))
        self._analyses: OrderedDict[tuple, Analysis | Message] = OrderedDict()  # recent messages, LRU
        self._analyses_lock = threading.Lock()

    @cached_property
    def referring(self) -> np.ndarray:
        """Generic follow-up phrasing under the cross-lingual model: embedded at the first turn
        that has a conversation, so a first question, a CLI call or a start-up never pays for it."""
        return self.crosslingual.embed_queries(list(signals.REFERRING_EXAMPLES))

    def clean(self, query: str | None) -> str:
        return clean_query(query, self.settings.query_max_chars)

    # ------------------------------------------------------------------ personas
    @property
    def space(self) -> PersonaSpace:
        """The notes' own personas."""
        return self._notes_space

    def space_for(self, own: Sequence[Persona] = ()) -> PersonaSpace:
        """The notes' personas and someone's own, which are found by name, typo and need
        alike. Each set of own personas is embedded once and kept (a few per process)."""
        if not own:
            return self._notes_space
        fingerprint = tuple((p.key, p.name, p.prompt) for p in own)
        with self._space_lock:
            if fingerprint in self._spaces:
                self._spaces.move_to_end(fingerprint)
                return self._spaces[fingerprint]
        space = self._notes_space.with_personas(list(own), self.notes_model, self.crosslingual)
        with self._space_lock:
            self._spaces[fingerprint] = space
            while len(self._spaces) > OWN_SPACES_KEPT:
                self._spaces.popitem(last=False)
        return space

    def find_persona(self, text: str, own: Sequence[Persona] = ()) -> Persona | None:
        """Name lookup alone (no model): an exact name, the words of one name, or a misspelt name."""
        catalog = self.space_for(own).catalog
        found = catalog.match_name(text, 100.0)
        if found is None and len(text.split()) <= SUBSET_MAX_WORDS:
            found = catalog.subset_match(text)  # "r interpreter" before "dream interpreter" by typo
        return found or catalog.match_name(text, NAME_MATCH)

    def resolve_persona(self, text: str, own: Sequence[Persona] = ()) -> Persona | None:
        """A persona named, misspelt or described: the name lookup first, then the ranking."""
        return next(iter(self.rank_personas(text, own, limit=1)), None)

    def rank_personas(self, text: str, own: Sequence[Persona] = (), limit: int = 10) -> list[Persona]:
        """Personas for a name, a typo or a described need, best first (a jailbreak prompt only
        by its name)."""
        cleaned = self.clean(text)
        analysis = self.analyse(cleaned, own)
        found = analysis.name_match or self.find_persona(cleaned, own)
        ranked = analysis.ranked_personas()
        if found is not None:
            ranked = [found] + [p for p in ranked if p.key != found.key]
        return ranked[:limit]

    def persona_passage(self, persona: Persona) -> Passage:
        row = self.index.row_of_persona.get(persona.key)
        if row is not None:
            return self.index.passages[row].with_score(1.0)
        return Passage(
            id=persona.key,
            path=("My personas", persona.name),
            body=persona.prompt,
            source="my personas",
            first_line=0,
            last_line=0,
            kind="persona",
            persona=persona.key,
            score=1.0,
        )

    # ------------------------------------------------------------------ search
    def analyse(self, text: str, own: Sequence[Persona] = ()) -> Analysis:
        """Scores and signals of a cleaned message, no decision yet; a message analysed a moment
        ago (routed, then retrieved for) is not embedded again, whoever's personas it is for."""
        return self._cached(("analysis", text, tuple(p.key for p in own)), lambda: self._analyse(text, own))

    def _cached(self, key: tuple, make: Callable[[], T]) -> T:
        with self._analyses_lock:
            if key in self._analyses:
                self._analyses.move_to_end(key)
                return self._analyses[key]
        value = make()
        with self._analyses_lock:
            self._analyses[key] = value
            while len(self._analyses) > ANALYSES_KEPT:
                self._analyses.popitem(last=False)
        return value

    def message(self, text: str) -> Message:
        """What a message is whatever personas it is compared with: its embeddings, its notes
        and its signals (kept by text, so routing with your own personas reuses them)."""
        return self._cached(("message", text), lambda: self._read_message(text))

    def crosslingual_vector(self, text: str) -> np.ndarray:
        """A cleaned text under the cross-lingual model: the vector of its analysis when it was
        analysed lately (a chat's previous question), else that model alone, kept by text."""
        with self._analyses_lock:
            known = self._analyses.get(("message", text))
        if isinstance(known, Message):
            return known.crosslingual_query
        return self._cached(
            ("crosslingual", text), lambda: self.crosslingual.query_vector(signals.searchable(text) or text)
        )

    def passage_vector(self, text: str) -> np.ndarray:
        """A previous answer's words under the cross-lingual model (as a passage), kept by text."""
        words = " ".join(text.split())[:PASSAGE_CHARS]
        return self._cached(("passage", words), lambda: self.crosslingual.embed_passages([words])[0])

    def _read_message(self, text: str) -> Message:
        scaffolding = signals.has_scaffolding(text)
        searched = signals.searchable(text) or text
        notes_query = np.asarray(self.notes_model.embed_query(searched), dtype=np.float32)
        cross_query = self.crosslingual.query_vector(searched)
        head = head_clause(searched)
        head_query = cross_query if head == searched else self.crosslingual.query_vector(head)
        known = signals.known_share(searched, self.index.vocabulary)
        rows = self.index.note_rows
        note_sims = self.index.vectors[rows] @ notes_query
        xl_sims = self.index.xl_vectors[rows] @ cross_query if self.index.crosslingual_ready else np.zeros(len(rows))
        notes = self._fuse(searched, note_sims, xl_sims, known)
        message = MessageSignals(
            notes_best=float(note_sims.max(initial=0.0)),
            crosslingual_best=float(xl_sims.max(initial=0.0)),
            notes_peak=peak(note_sims),
            crosslingual_peak=peak(xl_sims),
            title_mention=self._title_mention(searched),
            request=signals.is_request(text),
            request_similarity=float((self._role_request @ cross_query).max(initial=0.0)),
            question=signals.is_question(text),
            injection=signals.is_injection(text),
            injection_similarity=float((self._injection @ cross_query).max(initial=0.0)),
            errand_similarity=float((self._errand @ cross_query).max(initial=0.0)),
            words=signals.word_count(text),
            markup=signals.markup_share(text),
            known=known,
            scaffolding=scaffolding,
        )
        return Message(notes_query, cross_query, head_query, notes, message)

    def _analyse(self, text: str, own: Sequence[Persona]) -> Analysis:
        m = self.message(text)
        space = self.space_for(own)
        base = dict(
            text=text,
            name_match=None if m.signals.scaffolding else self.find_persona(text, own),
            notes_query=m.notes_query,
            crosslingual_query=m.crosslingual_query,
            signals=m.signals,
            notes=m.notes,
            space=space,
        )
        if not len(space):
            return Analysis(**base)
        scores = space.scores(text, m.notes_query, m.crosslingual_query, m.head_query)
        matrix = rank_matrix(scores, m.signals.known)
        rank = self.router.rank(matrix) if self.router is not None else None
        return Analysis(**base, scores=scores, matrix=matrix, rank=rank)

    def search(self, query: str, k: int | None = None, own: Sequence[Persona] = ()) -> SearchResult:
        """Route a message (persona, notes or none) and find its note passages."""
        k = k or self.settings.retrieval_k
        analysis = self.analyse(self.clean(query), own)
        return self.decide(query, analysis, k)

    def notes(self, query: str, k: int | None = None) -> list[Passage]:
        """The note passages for a query, best first, whatever the route (NotesRetriever)."""
        notes = self.message(self.clean(query)).notes
        return [self.index.passages[i].with_score(s) for i, s in notes[: k or self.settings.retrieval_k]]

    def decide(self, query: str, analysis: Analysis, k: int) -> SearchResult:
        result = self._decide(query, analysis, k)
        result.analysis = analysis
        if analysis.rank is not None and len(analysis.rank):
            shown = ([result.persona] if result.persona else []) + result.suggestions
            choice = np.exp(analysis.rank - analysis.rank.max())
            choice /= choice.sum()
            row = {p.key: i for i, p in enumerate(analysis.space.personas)}
            result.persona_probabilities = {p.key: round(float(choice[row[p.key]]), 4) for p in shown}
        return result

    def _decide(self, query: str, analysis: Analysis, k: int) -> SearchResult:
        passages = [self.index.passages[i].with_score(s) for i, s in analysis.notes[:k]]
        ranked = analysis.ranked_personas()
        if analysis.name_match is not None:
            picked = analysis.name_match
            return SearchResult(
                query=query,
                route="persona",
                persona=picked,
                persona_reason="name",
                suggestions=[p for p in ranked if p.key != picked.key][:SUGGESTIONS],
                probabilities={"persona": 1.0},
                passages=[self.persona_passage(picked), *passages][:k],
            )
        if analysis.rank is None and self.router is not None and analysis.signals is not None:
            decision = self.router.decide_without_personas(analysis.signals)  # a tree with no persona
            decision = decision if passages else Decision(route="none", probabilities=decision.probabilities)
        elif analysis.rank is None:
            decision = Decision(route="notes" if passages else "none", probabilities={})
        else:
            scaffolding = analysis.signals.scaffolding or analysis.signals.injection
            decision = self.router.choose(analysis.route_features, len(ranked), scaffolding=scaffolding)
        if decision.route == "persona":
            picked = ranked[0]
            return SearchResult(
                query=query,
                route="persona",
                persona=picked,
                persona_reason="ranked",
                suggestions=ranked[1 : 1 + SUGGESTIONS],
                probabilities=decision.probabilities,
                passages=[self.persona_passage(picked), *passages][:k],
            )
        return SearchResult(
            query=query,
            route=decision.route,
            suggestions=ranked[:SUGGESTIONS],
            passages=passages,
            probabilities=decision.probabilities,
        )

    def _title_mention(self, text: str) -> float:
        """The share of the message's words that name a section of the notes."""
        words = len(normalize_name(text).split())
        named = self.index.mentioned_titles(text)
        return min(1.0, len(named[0].split()) / words) if named and words else 0.0

    # ------------------------------------------------------------------- notes
    def _title_hits(self, text: str) -> list[int]:
        """Passages of the sections whose title the message spells (a typo allowed); only titles
        of about the message's length are compared."""
        query = normalize_name(text)
        if len(query) < 4:
            return []
        band = self.index.titles_near(len(query), TITLE_MATCH / 100)
        titles = self.index.titles[band.start : band.stop]
        hits = process.extract(query, titles, scorer=fuzz.ratio, score_cutoff=TITLE_MATCH, limit=TITLE_HITS)
        rows = [r for _, _, j in hits for r in self.index.title_rows[band.start + j]]
        for title in self.index.mentioned_titles(text)[:TITLE_HITS]:
            rows += [r for r in self.index.mentionable[title] if r not in rows]
        return rows

    def _fuse(self, text: str, note_sims: np.ndarray, xl_sims: np.ndarray, known: float) -> list[tuple[int, float]]:
        """Note passages, best first: their closeness under both models added (the notes model
        counted for the share of the message in the notes' words), fused by reciprocal rank
        with the sections whose title the message spells.

        Measured on the pooled training questions and the Logseq tree: a BM25 ranking in the
        fusion cost the paraphrases that share no word with their page (Logseq 6 of 10 to 0)
        and brought the bundled notes 1 of 215, so words count only through the models."""
        rows = self.index.note_rows
        rankings = [top_rows(known * note_sims + xl_sims, rows, POOL), self._title_hits(text)]
        scores: dict[int, float] = {}
        for ranking in rankings:
            for rank, row in enumerate(ranking):
                scores[row] = scores.get(row, 0.0) + 1.0 / (RRF_K + rank)
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class NotesRetriever(BaseRetriever):
    """The notes as a LangChain retriever: Documents whose metadata carry the breadcrumb, the
    file and its lines (a `Passage.to_dict()`), so it plugs into any LCEL chain.

    It returns the passages whatever the route; `only_relevant=True` returns nothing for a
    message the notes hold no answer to (the routing decision's "none")."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    pipeline: SearchPipeline
    k: int = 5
    only_relevant: bool = False

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.only_relevant and not self.pipeline.search(query, self.k).relevant:
            return []
        return [to_document(p) for p in self.pipeline.notes(query, self.k)]


def to_document(passage: Passage) -> Document:
    return Document(page_content=passage.text, id=passage.id, metadata=passage.to_dict())


def from_document(document: Document) -> Passage:
    return Passage.from_dict({**document.metadata, "text": document.page_content})
