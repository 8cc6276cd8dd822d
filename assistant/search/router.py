"""The routing decision: which persona a message means (ranking), and whether it asks for a
persona, the notes, or nothing the notes hold (one small model over scores and signals).

Both parts are linear models fitted with scikit-learn on a labelled file
(`python -m training fit`) and shipped as `data/router.json`. Their
inputs are scores, margins and text signals, never persona identities, so a catalog of
your own works without refitting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from assistant.search.persona_space import PersonaScores

Route = Literal["persona", "notes", "none"]
ROUTES: tuple[Route, ...] = ("persona", "notes", "none")
ROUTER_FILE = Path(__file__).parent / "data" / "router.json"

RANK_FEATURES = (
    "notes_model_z",  # the persona's cosine under the notes model, standardised over the catalog
    "notes_model_z_x_known",  # ... weighted by how much the message is in the notes' language
    "crosslingual_z",  # the title-and-prompt cosine under the cross-lingual model, standardised
    "crosslingual_z_x_known",
    "crosslingual_name_z",  # the request's head clause against the name alone, cross-lingual
    "crosslingual_name_z_x_known",
    "notes_contrast_z",  # cosine minus the nearest other persona's, notes model, standardised
    "crosslingual_contrast_z",  # ... cross-lingual model
    "name_window",  # some run of the message's words spells the name (0-1)
    "emoji",  # the message carries the persona's emoji
)
ROUTE_FEATURES = (
    "rank_top",
    "rank_margin",  # the ranker's best score and its lead over the second
    "persona_notes_model",
    "persona_crosslingual",
    "persona_name",  # raw cosines of the best-ranked persona
    "notes_best",
    "crosslingual_best",  # best note passage under each model
    "notes_peak",
    "crosslingual_peak",  # how far the best stands out from the rest (z-score): a topic, not noise
    "notes_gap",
    "crosslingual_gap",  # persona minus notes, per model
    "name_window_best",
    "emoji",
    "title_mention",  # the share of the message's words that name a section of the notes
    "request",
    "request_similarity",  # closeness to generic requests for a role, in any language
    "question",
    "injection",
    "injection_similarity",
    "errand_similarity",  # closeness to generic errands (a tool's action, not a role's advice)
    "log_words",
    "markup",
    "known",
    # The notes are in one language: for a foreign message the cross-lingual scores speak,
    # for a message in the notes' language the notes model does.
    "crosslingual_best_x_foreign",
    "crosslingual_peak_x_foreign",
    "notes_best_x_known",
    "persona_crosslingual_x_foreign",
    "question_x_foreign",  # a question asked in another language than the notes'
)


@dataclass(frozen=True)
class MessageSignals:
    """What the decision needs beyond the persona scores."""

    notes_best: float
    crosslingual_best: float
    notes_peak: float
    crosslingual_peak: float
    title_mention: float
    request: bool
    request_similarity: float
    question: bool
    injection: bool
    injection_similarity: float
    errand_similarity: float
    words: int
    markup: float
    known: float  # share of the message's words found in the notes
    scaffolding: bool


def _standardise(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-6)


def rank_matrix(scores: PersonaScores, known: float) -> np.ndarray:
    """One row of RANK_FEATURES per persona."""
    notes, cross = _standardise(scores.notes_model), _standardise(scores.crosslingual)
    name = _standardise(scores.crosslingual_name)
    notes_contrast, cross_contrast = _standardise(scores.notes_contrast), _standardise(scores.crosslingual_contrast)
    return np.stack(
        [
            notes, notes * known, cross, cross * known, name, name * known,
            notes_contrast, cross_contrast, scores.name_window, scores.emoji,
        ],
        axis=1,
    )  # fmt: skip


def route_vector(rank: np.ndarray, scores: PersonaScores, signals: MessageSignals) -> np.ndarray:
    """ROUTE_FEATURES of one message, given its persona ranking scores."""
    order = np.argsort(-rank)
    top = int(order[0])
    second = float(rank[order[1]]) if len(order) > 1 else float(rank[top])
    persona_notes, persona_cross = float(scores.notes_model[top]), float(scores.crosslingual[top])
    return np.array(
        [
            float(rank[top]),
            float(rank[top]) - second,
            persona_notes,
            persona_cross,
            float(scores.crosslingual_name[top]),
            signals.notes_best,
            signals.crosslingual_best,
            signals.notes_peak,
            signals.crosslingual_peak,
            persona_notes - signals.notes_best,
            persona_cross - signals.crosslingual_best,
            float(scores.name_window.max(initial=0.0)),
            float(scores.emoji.max(initial=0.0)),
            signals.title_mention,
            float(signals.request),
            signals.request_similarity,
            float(signals.question),
            float(signals.injection),
            signals.injection_similarity,
            signals.errand_similarity,
            math.log1p(signals.words),
            signals.markup,
            signals.known,
            signals.crosslingual_best * (1 - signals.known),
            signals.crosslingual_peak * (1 - signals.known),
            signals.notes_best * signals.known,
            persona_cross * (1 - signals.known),
            float(signals.question) * (1 - signals.known),
        ],
        dtype=np.float64,
    )


# Features that speak of the best persona: a catalog with no persona has none of them.
PERSONA_FEATURES = frozenset(
    {
        "rank_top", "rank_margin", "persona_notes_model", "persona_crosslingual", "persona_name",
        "notes_gap", "crosslingual_gap", "name_window_best", "emoji", "persona_crosslingual_x_foreign",
    }
)  # fmt: skip


def signals_vector(signals: MessageSignals) -> np.ndarray:
    """ROUTE_FEATURES of a message when there is no persona to compare it with (the persona
    entries are filled in by `Router.decide_without_personas`)."""
    empty = np.zeros(1)
    scores = PersonaScores(empty, empty, empty, empty, empty, empty, empty)
    return route_vector(np.zeros(1), scores, signals)


@dataclass(frozen=True)
class Decision:
    route: Route
    probabilities: dict[Route, float]


@dataclass
class Router:
    rank_weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # one row per route in ROUTES
    intercept: np.ndarray
    fitted_with: str = ""  # the notes model whose cosines the decision was fitted on
    report: dict | None = None

    def rank(self, matrix: np.ndarray) -> np.ndarray:
        return matrix @ self.rank_weights

    def decide(self, vector: np.ndarray, scaffolding: bool = False) -> Decision:
        """The most likely route; scaffolding (fake turns, format tokens) never gets a persona."""
        logits = self.coef @ ((vector - self.mean) / self.scale) + self.intercept
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        p = {route: float(x) for route, x in zip(ROUTES, probs)}
        ranked = sorted(ROUTES, key=lambda r: -p[r])
        route = ranked[0]
        if scaffolding and route == "persona":
            route = ranked[1]
        return Decision(route=route, probabilities=p)

    def choose(self, vector: np.ndarray, candidates: int, scaffolding: bool = False) -> Decision:
        """The decision the app acts on, given how many personas it may offer (prompts that are
        jailbreaks are not candidates): a persona route with none to offer is none. The app
        and the training's scoring both call this, so the figures measure what ships."""
        decision = self.decide(vector, scaffolding=scaffolding)
        if decision.route == "persona" and not candidates:
            return Decision(route="none", probabilities=decision.probabilities)
        return decision

    def decide_without_personas(self, signals: MessageSignals) -> Decision:
        """Notes or none for a notes tree that holds no persona: the persona entries of the
        vector take their average over the fitted examples (they say nothing either way), and the
        choice is between the two other routes. Without this, every message reached the notes."""
        vector = signals_vector(signals)
        for i, name in enumerate(ROUTE_FEATURES):
            if name in PERSONA_FEATURES:
                vector[i] = self.mean[i]
        logits = self.coef @ ((vector - self.mean) / self.scale) + self.intercept
        keep = [i for i, r in enumerate(ROUTES) if r != "persona"]
        probs = np.exp(logits[keep] - logits[keep].max())
        probs /= probs.sum()
        p: dict[Route, float] = {"persona": 0.0, **{ROUTES[i]: float(x) for i, x in zip(keep, probs)}}
        return Decision(route=max(("notes", "none"), key=lambda r: p[r]), probabilities=p)

    def to_json(self) -> str:
        return json.dumps(
            {
                "rank_features": list(RANK_FEATURES),
                "rank_weights": self.rank_weights.round(6).tolist(),
                "route_features": list(ROUTE_FEATURES),
                "routes": list(ROUTES),
                "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(),
                "coef": self.coef.round(6).tolist(),
                "intercept": self.intercept.round(6).tolist(),
                "fitted_with": self.fitted_with,
                "cross_validation": self.report,
            },
            indent=1,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Router:
        data = json.loads(text)
        if data.get("rank_features") != list(RANK_FEATURES) or data.get("route_features") != list(ROUTE_FEATURES):
            raise ValueError(
                "the router file was fitted on other features: refit it with `python -m training fit --out FILE`"
            )
        return cls(
            rank_weights=np.array(data["rank_weights"]),
            mean=np.array(data["mean"]),
            scale=np.array(data["scale"]),
            coef=np.array(data["coef"]),
            intercept=np.array(data["intercept"]),
            fitted_with=data.get("fitted_with", ""),
            report=data.get("cross_validation"),
        )

    @classmethod
    def load(cls, path: Path = ROUTER_FILE) -> Router:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path = ROUTER_FILE) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")
