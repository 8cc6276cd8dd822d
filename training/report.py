"""The figures that cross authors and notes trees: fit on one author's file, score on the other's;
fit on the bundled notes, score on the Logseq tree. In-sample figures beside them, for the gap.

Routing is scored from the analyses (every fold refitted, nothing re-embedded); answers run the
whole engine with the routing model fitted without the file they are scored on.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from assistant.evaluation import score
from training import router_fit
from training.datasets import AUTHOR_A, AUTHOR_B_NOTES, AUTHOR_B_PERSONAS, LOGSEQ_QUERIES, load_rows
from training.stores import bundled_service, logseq_service

SCRIPT_GROUPS = {
    "LATIN": "Latin",
    "CYRILLIC": "Cyrillic",
    "GREEK": "Greek",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "CJK": "CJK",
    "HIRAGANA": "CJK",
    "KATAKANA": "CJK",
    "HANGUL": "CJK",
    "THAI": "Thai",
    "DEVANAGARI": "Indic",
    "BENGALI": "Indic",
    "TAMIL": "Indic",
    "TELUGU": "Indic",
    "GURMUKHI": "Indic",
    "GUJARATI": "Indic",
    "KANNADA": "Indic",
    "MALAYALAM": "Indic",
    "GEORGIAN": "Caucasian",
    "ARMENIAN": "Caucasian",
}


def script_of(text: str) -> str:
    """The script most of a text's letters are written in, grouped by family."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            counts[SCRIPT_GROUPS.get(name.split(" ")[0], "other")] += 1
    return counts.most_common(1)[0][0] if counts else "none"


def routing(train: list, test: list) -> dict:
    """Fit on `train` examples, judge `test` ones: by subgroup, and by script for personas."""
    router = router_fit.fit(train)
    report = router_fit.score(router, test)
    scripts: dict[str, list[bool]] = defaultdict(list)
    for ex in test:
        if ex.kind == "persona" and ex.subgroup != "exact":
            scripts[script_of(ex.query)].append(router_fit.outcome(router, ex)["top1"])
    report["persona_top1_by_script"] = {k: f"{sum(v)}/{len(v)}" for k, v in sorted(scripts.items())}
    return report


def answers(service_factory: object, router_examples: list, lines: list[dict], group: str) -> dict:
    """Answer `lines` end to end with a routing model fitted on `router_examples`."""
    from assistant.evaluation import prediction

    router = router_fit.fit(router_examples)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "router.json"
        router.save(path)
        service = service_factory(path)
        preds = [prediction(service, row, with_answer=row["kind"] == "notes") for row in lines]
    return score(lines, preds, group=group)


def cross_report(store: str, logseq_store: str, answers_too: bool = True) -> dict:
    bundled = bundled_service(store)
    a_rows = load_rows([AUTHOR_A])
    b_rows = load_rows([AUTHOR_B_PERSONAS, AUTHOR_B_NOTES])
    a = router_fit.build_examples(bundled.pipeline, a_rows)
    b = router_fit.build_examples(bundled.pipeline, b_rows)
    report: dict = {
        "routing": {
            "fit A (train_queries), score B (train_d_*)": routing(a, b),
            "fit B (train_d_*), score A (train_queries)": routing(b, a),
            "in-sample, fit A+B, score B": routing(a + b, b),
            "in-sample, fit A+B, score A": routing(a + b, a),
        }
    }
    logseq_rows = load_rows([LOGSEQ_QUERIES])
    if answers_too:
        b_notes = [r for r in b_rows if r["kind"] != "persona"]
        a_notes = [r for r in a_rows if r["kind"] != "persona"]
        report["answers"] = {
            "fit A, answer B's notes questions (by style)": answers(
                lambda p: bundled_service(store, p), a, b_notes, "style"
            ),
            "fit B, answer A's notes questions (by subgroup)": answers(
                lambda p: bundled_service(store, p), b, a_notes, "subgroup"
            ),
            "in-sample, fit A+B, answer B's (by style)": answers(
                lambda p: bundled_service(store, p), a + b, b_notes, "style"
            ),
            "fit A+B on the bundled notes, answer the Logseq tree": answers(
                lambda p: logseq_service(logseq_store, p), a + b, logseq_rows, "subgroup"
            ),
        }
    return report


def print_report(report: dict) -> None:
    def pct(v: object) -> str:
        return f"{100 * v:.1f}%" if isinstance(v, float) else str(v)

    for name, r in report.get("routing", {}).items():
        all_ = r["ALL"]
        print(f"\nROUTING {name}")
        print("  " + "  ".join(f"{k} {pct(v)}" for k, v in all_.items()))
        for group, values in r.items():
            if "/" in group:
                print(f"    {group:24s} " + "  ".join(f"{k} {pct(v)}" for k, v in values.items() if k != "n")
                      + f"  (n={values['n']})")  # fmt: skip
        print("    persona top-1 by script (need/other/typo): " + ", ".join(
            f"{k} {v}" for k, v in r["persona_top1_by_script"].items()))  # fmt: skip
    for name, r in report.get("answers", {}).items():
        all_ = r["ALL"]
        print(f"\nANSWERS {name}")
        print(
            f"  hit@5 {pct(all_['notes_hit5'])}  key fact {pct(all_['answer_key_fact'])}  "
            f"median {all_['answer_median_chars']} chars  none rejected {pct(all_['none_rejection'])}  "
            f"notes given a persona {pct(all_['notes_with_persona'])}"
        )
        for group in sorted(r["notes_hit5"]):
            kf = r["answer_key_fact"].get(group)
            print(f"    {group:14s} hit@5 {pct(r['notes_hit5'][group])}  key fact {pct(kf)}")
        if r["none_rejection"]:
            print("    none: " + ", ".join(f"{k} {pct(v)}" for k, v in r["none_rejection"].items()))
