"""Fitting the router on a labelled file (the eval line format), with k-fold
cross-validation reported per subgroup. `python -m training fit --out FILE TRAIN.jsonl …`.

The ranker is a pairwise logistic regression (the expected persona against every other);
the decision is a multinomial logistic regression over ROUTE_FEATURES. Cross-validation
refits both on each training fold and scores the held-out fold end to end: name path,
ranking, decision and suggestions, as `search` runs them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from assistant.core.personas import normalize_name
from assistant.core.text import QueryError
from assistant.search.retrieval import SUGGESTIONS, Analysis, SearchPipeline
from assistant.search.router import ROUTES, Route, Router, route_vector

RANKER_C = 1.0  # inverse regularisation strength, sklearn's default; CV showed no gain elsewhere
DECISION_C = 1.0
# Classes are weighted inversely to their counts, and notes twice more: a notes question
# answered "nothing relevant" costs the reader more than an off-topic one answered with the
# closest notes. In 5-fold CV on the training file, x2 routed 96% of notes questions to the
# notes (90% at x1) while routing 92% of none queries to none (93% at x1).
NOTES_WEIGHT = 2.0
FOLDS = 5
SEED = 0


@dataclass
class Example:
    kind: Route
    subgroup: str
    query: str
    expected: frozenset[int]  # catalog rows of the expected persona (duplicate names: all)
    name_match: int | None  # the row the name path picks, if any
    analysis: Analysis


def build_examples(retriever: SearchPipeline, rows: list[dict]) -> list[Example]:
    """Analyse every labelled line once (both models); lines that cannot be searched are skipped."""
    personas = retriever.space.personas
    rows_of_name: dict[str, set[int]] = defaultdict(set)
    for i, p in enumerate(personas):
        rows_of_name[normalize_name(p.name)].add(i)
    row_of_key = {p.key: i for i, p in enumerate(personas)}
    out = []
    for row in rows:
        try:
            analysis = retriever.analyse(retriever.clean(row["query"]))
        except QueryError:
            continue
        name_match = row_of_key.get(analysis.name_match.key) if analysis.name_match else None
        expected = frozenset(rows_of_name.get(normalize_name(row.get("expect") or ""), set()))
        out.append(
            Example(
                kind=row["kind"],
                subgroup=row.get("subgroup", "all"),
                query=row["query"],
                expected=expected,
                name_match=name_match,
                analysis=analysis,
            )
        )
    return out


def fit_ranker(examples: list[Example]) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    pairs, labels = [], []
    for ex in examples:
        if ex.kind != "persona" or not ex.expected:
            continue
        m = ex.analysis.matrix
        target = m[min(ex.expected)]
        others = np.array([j for j in range(len(m)) if j not in ex.expected])
        diff = target - m[others]
        pairs += [diff, -diff]
        labels += [np.ones(len(diff)), np.zeros(len(diff))]
    model = LogisticRegression(fit_intercept=False, C=RANKER_C, max_iter=5000)
    model.fit(np.vstack(pairs), np.concatenate(labels))
    return model.coef_[0]


def fit_decision(examples: list[Example], weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Feature means and scales, and the coefficients and intercepts of each route."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([_route_features(ex, weights) for ex in examples])
    y = np.array([ROUTES.index(ex.kind) for ex in examples])
    scaler = StandardScaler().fit(x)
    counts = np.bincount(y, minlength=len(ROUTES))
    weights_by_class = {i: len(y) / (len(ROUTES) * max(n, 1)) for i, n in enumerate(counts)}
    weights_by_class[ROUTES.index("notes")] *= NOTES_WEIGHT
    model = LogisticRegression(C=DECISION_C, class_weight=weights_by_class, max_iter=5000)
    model.fit(scaler.transform(x), y)
    coef = np.zeros((len(ROUTES), x.shape[1]))
    intercept = np.zeros(len(ROUTES))
    for row, cls in enumerate(model.classes_):
        coef[cls], intercept[cls] = model.coef_[row], model.intercept_[row]
    return scaler.mean_, np.where(scaler.scale_ > 0, scaler.scale_, 1.0), coef, intercept


def _route_features(ex: Example, weights: np.ndarray) -> np.ndarray:
    a = ex.analysis
    return route_vector(a.matrix @ weights, a.scores, a.signals)


def fit(examples: list[Example], fitted_with: str = "") -> Router:
    weights = fit_ranker(examples)
    mean, scale, coef, intercept = fit_decision(examples, weights)
    return Router(rank_weights=weights, mean=mean, scale=scale, coef=coef, intercept=intercept, fitted_with=fitted_with)


def outcome(router: Router, ex: Example) -> dict:
    """What `search` would answer for this example, and whether it is right."""
    a = ex.analysis
    rank = a.matrix @ router.rank_weights
    order = [int(i) for i in np.argsort(-rank) if not a.space.jailbreak[int(i)]]
    if ex.name_match is not None:
        pick, route = ex.name_match, "persona"
    else:
        decision = router.choose(
            route_vector(rank, a.scores, a.signals),
            len(order),
            scaffolding=a.signals.scaffolding or a.signals.injection,
        )
        route = decision.route
        pick = order[0] if route == "persona" and order else None
    suggestions = [i for i in order if i != pick][:SUGGESTIONS]
    return {
        "route": route,
        "pick": pick,
        "top1": pick is not None and pick in ex.expected,
        "offered": (pick is not None and pick in ex.expected) or any(i in ex.expected for i in suggestions),
        "ranked_first": bool(order) and order[0] in ex.expected,
    }


def score(router: Router, examples: list[Example]) -> dict:
    """The targets' figures by kind and subgroup, every example judged by `router`."""
    return _report([(router, ex) for ex in examples])


def cross_validate(examples: list[Example], folds: int = FOLDS, seed: int = SEED) -> dict:
    """Stratified k-fold by kind and subgroup: each example judged by a router fitted without it."""
    from sklearn.model_selection import StratifiedKFold

    strata = [f"{ex.kind}/{ex.subgroup}" for ex in examples]
    held_out: list[tuple[Router, Example]] = []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(examples, strata):
        router = fit([examples[i] for i in train_idx])
        held_out += [(router, examples[i]) for i in test_idx]
    return _report(held_out)


def _report(judged: list[tuple[Router, Example]]) -> dict:
    groups: dict[str, list] = defaultdict(list)
    for router, ex in judged:
        groups[f"{ex.kind}/{ex.subgroup}"].append((ex, outcome(router, ex)))
    report: dict[str, dict] = {}
    for name, items in sorted(groups.items()):
        kind = name.split("/")[0]
        n = len(items)
        if kind == "persona":
            report[name] = {
                "n": n,
                "top1": _share(o["top1"] for _, o in items),
                "pick_or_suggested": _share(o["offered"] for _, o in items),
                "ranked_first": _share(o["ranked_first"] for _, o in items),
            }
        elif kind == "notes":
            report[name] = {
                "n": n,
                "with_persona": _share(o["pick"] is not None for _, o in items),
                "routed_notes": _share(o["route"] == "notes" for _, o in items),
            }
        else:
            report[name] = {
                "n": n,
                "rejected": _share(o["pick"] is None for _, o in items),
                "routed_none": _share(o["route"] == "none" for _, o in items),
            }
    flat = {kind: [o for k, items in groups.items() if k.startswith(kind + "/") for _, o in items] for kind in ROUTES}
    report["ALL"] = {
        "persona_top1": _share(o["top1"] for o in flat["persona"]),
        "persona_pick_or_suggested": _share(o["offered"] for o in flat["persona"]),
        "notes_with_persona": _share(o["pick"] is not None for o in flat["notes"]),
        "none_rejected": _share(o["pick"] is None for o in flat["none"]),
    }
    return report


def _share(values: Iterable[object]) -> float | None:
    values = list(values)
    return round(sum(bool(v) for v in values) / len(values), 4) if values else None
