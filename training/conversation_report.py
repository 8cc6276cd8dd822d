"""Turns in context across notes trees: fit on one tree's turns, answer the other tree's.

For each direction the routing model is fitted on the pooled training files without the scored
tree's turns, and the turn-context model on the other tree's turns (the conversation file's and
the older follow-up lines'); then every turn of the scored tree is answered end to end.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from assistant.core.settings import NOTES_DIR
from training import context_fit, router_fit
from training.conversations import score_turns
from training.datasets import CONVERSATIONS, LOGSEQ_TREE, TRAIN_FILES, load_rows, routing_rows, turn_rows
from training.stores import NO_ROUTER, service_for

TREES = {"bundled": NOTES_DIR, "logseq": LOGSEQ_TREE}
DIRECTIONS = (("bundled", "logseq"), ("logseq", "bundled"))


def conversation_report(stores: dict[str, str]) -> dict:
    rows = load_rows(TRAIN_FILES)
    turns_of = {tree: [r for r in load_rows([CONVERSATIONS]) if r["tree"] == tree] for tree in TREES}
    plain = service_for(stores["bundled"], TREES["bundled"], NO_ROUTER)
    report: dict[str, dict] = {}
    for fit_tree, test_tree in DIRECTIONS:
        unseen = {r["query"] for r in turns_of[test_tree]}
        routed = routing_rows([r for r in rows if r["query"] not in unseen])
        router = router_fit.fit(router_fit.build_examples(plain.pipeline, routed))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "router.json"
            router.save(path)
            services = {tree: service_for(stores[tree], notes, path) for tree, notes in TREES.items()}
            fitted_on = [r for r in turn_rows(rows) if r.get("tree", "bundled") == fit_tree]
            turns = context_fit.build_turns(lambda tree, s=services: s[tree].pipeline, fitted_on)
            model = context_fit.fit(turns)
            predictions = context_fit.answer_turns(services[test_tree], model, turns_of[test_tree])
        report[f"fit {fit_tree} turns -> answer {test_tree} turns"] = {
            "turns": score_turns(turns_of[test_tree], predictions),
            "fitted_on": len(turns),
        }
    return report


def print_conversations(report: dict) -> None:
    for name, r in report.items():
        print(f"\nTURNS IN CONTEXT {name} (context model fitted on {r['fitted_on']} turns)")
        for group, v in sorted(r["turns"].items()):
            print(f"    {group:16s} key fact {v['key_fact']:5.1f}  on topic {v['on_topic']:5.1f}  "
                  f"leaks {v['leaks']:5.1f}  nothing {v['nothing']:5.1f}  (n={v['n']})")  # fmt: skip
