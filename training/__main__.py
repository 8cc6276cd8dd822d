"""`python -m training fit|report …`: refit the routing model, or report the figures that
cross authors and notes trees (fit on one file, score on another)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from training.datasets import DATA, TRAIN_FILES, load_rows, routing_rows, turn_rows


def cmd_fit(args: argparse.Namespace) -> int:
    from training import context_fit, router_fit
    from training.stores import bundled_service, logseq_service

    files = [Path(f) for f in args.files] or TRAIN_FILES
    started = time.perf_counter()
    service = bundled_service(args.store)
    rows = load_rows(files)
    examples = router_fit.build_examples(service.pipeline, routing_rows(rows))
    router = router_fit.fit(examples, fitted_with="+".join(f.name for f in files))
    if args.folds:
        router.report = {"folds": args.folds, **router_fit.cross_validate(examples, folds=args.folds)}
    out = Path(args.out)
    router.save(out)
    print(f"{len(examples)} examples from {', '.join(f.name for f in files)} ({time.perf_counter() - started:.0f} s)")
    print(f"routing model written to {out}")
    if args.context_out:
        with tempfile.TemporaryDirectory() as tmp:
            fitted = Path(tmp) / "router.json"
            router.save(fitted)  # the turns are searched as the app will search them
            pipelines = {"bundled": bundled_service(args.store, fitted).pipeline}
            if any(r.get("tree") == "logseq" for r in turn_rows(rows)):
                pipelines["logseq"] = logseq_service(args.logseq_store, fitted).pipeline
            turns = context_fit.build_turns(pipelines.__getitem__, turn_rows(rows))
        context = context_fit.fit(turns, fitted_with="+".join(f.name for f in files))
        context.save(Path(args.context_out))
        print(f"{len(turns)} turns in context; context model written to {args.context_out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from training.conversation_report import conversation_report, print_conversations
    from training.report import cross_report

    report = cross_report(args.store, args.logseq_store, answers_too=not args.no_answers)
    if not args.no_answers:
        report["conversations"] = conversation_report({"bundled": args.store, "logseq": args.logseq_store})
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    from training.report import print_report

    print_report(report)
    print_conversations(report.get("conversations", {}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit the routing model on labelled files and write it to --out")
    f.add_argument("files", nargs="*", help=f"labelled JSON lines (default: the training files in {DATA})")
    f.add_argument("--out", required=True, help="where to write it (the app reads ROUTER_FILE, or the shipped one)")
    f.add_argument("--folds", type=int, default=0, help="also report k-fold cross-validation")
    f.add_argument("--store", default=".store-training/bundled", help="a store of the bundled notes (made if missing)")
    f.add_argument(
        "--logseq-store", default=".store-training/logseq", help="a store of the Logseq tree (made if missing)"
    )
    f.add_argument(
        "--context-out", help="also fit the turn-context model on the lines with a history, and write it here"
    )
    f.set_defaults(func=cmd_fit)
    r = sub.add_parser("report", help="cross-author and cross-tree figures (fit on one, score on another)")
    r.add_argument("--store", default=".store-training/bundled")
    r.add_argument("--logseq-store", default=".store-training/logseq")
    r.add_argument("--out", default="training/report.json")
    r.add_argument("--no-answers", action="store_true", help="retrieval and routing only (faster)")
    r.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
