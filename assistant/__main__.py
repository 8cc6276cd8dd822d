"""`python -m assistant search|personas|eval|ask ...`: the command line over the library."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .cli_ask import add_ask_parser
from .settings import get_settings
from .store import IndexMissingError
from .text import QueryError


def _print_result(result, as_json: bool) -> None:
    if as_json:
        data = result.to_prediction()
        data["intent"] = result.intent
        data["message"] = result.message
        data["passages"] = [p.to_dict() for p in result.passages]
        print(json.dumps(data, ensure_ascii=False))
        return
    if result.persona:
        p = result.persona
        print(f"Persona: {p.emoji} {p.name}  (by {result.persona_reason}; line {p.line})")
        print(f"  {p.prompt[:300]}{'…' if len(p.prompt) > 300 else ''}\n")
    if not result.relevant:
        print(result.message)
        return
    for n, passage in enumerate(result.passages, 1):
        print(f"[{n}] {passage.breadcrumb}  ({passage.source}:{passage.first_line}-{passage.last_line}, score {passage.score:.4f})")
        snippet = passage.text if len(passage.text) < 400 else passage.text[:400] + "…"
        print("    " + snippet.replace("\n", "\n    "))


def cmd_search(args, assistant) -> int:
    if args.batch:
        from .evaluation import load_jsonl

        rows = load_jsonl(Path(args.batch))
        for row in rows:
            query = row.get("query", "")
            try:
                line = assistant.search(query, args.k).to_prediction()
            except QueryError as exc:
                line = {"query": query, "persona": None, "passages": [], "error": str(exc)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        return 0
    if not args.query:
        print("search needs a QUERY or --batch FILE", file=sys.stderr)
        return 2
    _print_result(assistant.search(args.query, args.k), args.json)
    return 0


def cmd_personas(args, assistant) -> int:
    catalog = assistant.catalog
    items = catalog.search(args.search, limit=args.limit) if args.search else [(p, 100.0) for p in catalog.personas]
    if args.json:
        print(json.dumps([{**p.to_dict(), "score": s} for p, s in items], ensure_ascii=False))
        return 0
    if not items:
        print(f"no persona close to {args.search!r}")
    for p, s in items:
        score = f"  ({s:.0f})" if args.search else ""
        slots = f"  slots: {', '.join(p.slots)}" if p.slots else ""
        print(f"{p.emoji or ' '} {p.name}{score}  [line {p.line}]{slots}")
    return 0


def cmd_eval(args, assistant) -> int:
    from .evaluation import DEFAULT_GOLD, load_jsonl, score

    gold = load_jsonl(Path(args.gold or DEFAULT_GOLD))
    started = time.perf_counter()
    preds = [assistant.search(g["query"]).to_prediction() for g in gold]
    result = score(gold, preds)
    result["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    a = result["ALL"]
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    print(f"gold: {args.gold or DEFAULT_GOLD} ({len(gold)} queries, {result['seconds']} s)")
    print(f"persona top-1   {fmt(a['persona_top1'])}  " + "  ".join(f"{k} {fmt(v)}" for k, v in sorted(result['persona_top1'].items())))
    print(f"notes hit@1     {fmt(a['notes_hit1'])}")
    print(f"notes hit@5     {fmt(a['notes_hit5'])}")
    print(f"none rejected   {fmt(a['none_rejection'])}")
    print(f"notes with a persona  {fmt(a['notes_with_persona'])}")
    if a["notes_top5_chars_mean"] is not None:
        print(f"top-5 passage size    {a['notes_top5_chars_mean']:.0f} characters on average")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant", description="Search and chat with your notes.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="find the persona or note passages for a query")
    s.add_argument("query", nargs="?")
    s.add_argument("-k", type=int, default=None, help="passages to return (default RETRIEVAL_K)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--batch", metavar="FILE.jsonl", help="one prediction line per `query` line, model loaded once")
    s.set_defaults(func=cmd_search)

    p = sub.add_parser("personas", help="list or fuzzy-search the persona catalog")
    p.add_argument("--search", metavar="TEXT")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_personas)

    e = sub.add_parser("eval", help="retrieval scores over a gold file (default: the bundled set)")
    e.add_argument("gold", nargs="?")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    add_ask_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .service import Assistant

    assistant = Assistant(get_settings())
    try:
        return args.func(args, assistant)
    except (QueryError, IndexMissingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
