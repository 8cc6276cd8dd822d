"""Turns in context (`train_conversations.jsonl`): is each answer about the right topic?

The definitions of the conversation issue, per subgroup:
- key fact: the answer contains `expect_phrase`;
- on topic: the answer quotes the expected section (its key fact, or a cited source under a
  heading of `expect_any`);
- leaks in: a cited source lies under a heading of `history_topic` and under none expected;
- nothing relevant: the answer cites nothing.
"""

from __future__ import annotations

from collections import defaultdict

from assistant.evaluation import _norm_text, passage_hit

MEASURES = ("key_fact", "on_topic", "leaks", "nothing")


def judge(gold: dict, prediction: dict) -> dict[str, bool]:
    sources = prediction.get("sources") or []
    answer = _norm_text(str(prediction.get("answer") or ""))
    expect_any = gold.get("expect_any") or []
    phrase = gold.get("expect_phrase")
    key_fact = bool(phrase) and _norm_text(phrase) in answer
    on_topic = key_fact or any(passage_hit(s, expect_any, None) for s in sources)
    leaks = any(
        passage_hit(s, gold.get("history_topic") or [], None) and not passage_hit(s, expect_any, phrase)
        for s in sources
    )
    return {"key_fact": key_fact, "on_topic": on_topic, "leaks": leaks, "nothing": not sources}


def score_turns(gold: list[dict], predictions: list[dict]) -> dict[str, dict[str, float]]:
    """Per subgroup (and ALL): each measure's share, and `n`."""
    by_query = {" ".join(p["query"].split()): p for p in predictions}
    tallies: dict[str, list[dict[str, bool]]] = defaultdict(list)
    for g in gold:
        verdict = judge(g, by_query.get(" ".join(g["query"].split()), {}))
        tallies[g["subgroup"]].append(verdict)
        tallies["ALL"].append(verdict)
    return {
        group: {**{m: round(100 * sum(v[m] for v in vs) / len(vs), 1) for m in MEASURES}, "n": len(vs)}
        for group, vs in tallies.items()
    }
