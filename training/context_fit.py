"""Fitting the turn-context model: does a message in a running chat need the conversation?

Examples are labelled turns: `train_conversations.jsonl` (follow-ups need it; new topics and
off-topic messages do not), pooled with the older follow-up lines of the notes files (each a
question with a `history`). Each turn is searched twice, as the app searches it: the message
alone and joined with the previous question (`assistant.search.context`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.core.text import QueryError
from assistant.search.context import CONTEXT_FEATURES, ContextModel, joined_text, turn_signals
from assistant.search.retrieval import SearchPipeline

C = 1.0  # sklearn's default regularisation
NEEDS_HISTORY = ("followup", "followup_lang")


@dataclass(frozen=True)
class TurnExample:
    query: str
    tree: str
    subgroup: str
    joined: bool  # the label: the message needs the conversation
    vector: np.ndarray


def previous_question(row: dict) -> str | None:
    users = [t["content"] for t in row.get("history") or [] if t.get("role") == "user"]
    return users[-1] if users else None


def previous_answer(row: dict) -> str:
    said = [t["content"] for t in row.get("history") or [] if t.get("role") == "assistant"]
    return said[-1] if said else ""


def is_turn(row: dict) -> bool:
    return bool(row.get("history"))


def label_of(row: dict) -> bool:
    """Follow-ups need the conversation; the older files' lines with a history are follow-ups."""
    group = row.get("subgroup") or ""
    if group in NEEDS_HISTORY or row.get("style") == "followup" or group == "followup":
        return True
    return False


def build_turns(pipelines: Callable[[str], SearchPipeline], rows: list[dict]) -> list[TurnExample]:
    """Both searches of every turn with a history (`pipelines(tree)` gives the tree's pipeline)."""
    out = []
    for row in rows:
        previous = previous_question(row)
        if previous is None:
            continue
        tree = row.get("tree", "bundled")
        pipeline = pipelines(tree)
        try:
            alone = pipeline.search(row["query"])
            joined = pipeline.search(joined_text(previous, row["query"]))
        except QueryError:
            continue
        vector = turn_signals(pipeline, alone, joined, previous, previous_answer(row))
        out.append(
            TurnExample(row["query"], tree, row.get("subgroup") or row.get("style") or "", label_of(row), vector)
        )
    return out


def fit(examples: list[TurnExample], fitted_with: str = "") -> ContextModel:
    from sklearn.linear_model import LogisticRegression

    x = np.stack([e.vector for e in examples])
    y = np.array([e.joined for e in examples], dtype=int)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit((x - mean) / scale, y)
    return ContextModel(
        mean=mean, scale=scale, coef=model.coef_[0], intercept=float(model.intercept_[0]), fitted_with=fitted_with
    )


def accuracy(model: ContextModel, examples: list[TurnExample]) -> dict[str, str]:
    """The share of turns given the right context, per subgroup."""
    groups: dict[str, list[bool]] = {}
    for e in examples:
        right = (model.choose(e.vector) == "joined") == e.joined
        groups.setdefault(e.subgroup, []).append(right)
        groups.setdefault("ALL", []).append(right)
    return {g: f"{sum(v)}/{len(v)}" for g, v in sorted(groups.items())}


def weights(model: ContextModel) -> dict[str, float]:
    return {name: round(float(w), 3) for name, w in zip(CONTEXT_FEATURES, model.coef, strict=True)}


def answer_turns(service: object, model: ContextModel | None, rows: list[dict]) -> list[dict]:
    """Answer each turn end to end with `model` deciding its context (the CLI's prediction lines)."""
    from assistant.evaluation import prediction

    engine = service.engine
    kept = engine.context_model
    engine.context_model = model
    try:
        return [prediction(service, row) for row in rows]
    finally:
        engine.context_model = kept
