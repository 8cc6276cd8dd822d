"""`python -m assistant search|personas|eval|ask|fit-router ...`: the command line over the library."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from .evaluation import DEFAULT_GOLD, TRAIN_FILE, load_jsonl
from .settings import get_settings
from .store import IndexMissingError
from .text import QueryError

if TYPE_CHECKING:
    from .personas import Persona
    from .retrieval import SearchResult
    from .service import Assistant


class UsageError(ValueError):
    """A command line that cannot run; the message names the flag that fixes it."""


# ------------------------------------------------------------------------- search
def print_result(result: SearchResult) -> None:
    if result.persona:
        p = result.persona
        print(f"Persona: {p.emoji} {p.name}  (by {result.persona_reason}; {p.source}:{p.line})")
        print(f"  {p.prompt[:300]}{'…' if len(p.prompt) > 300 else ''}\n")
    elif result.suggestions:
        print("Personas that may fit: " + ", ".join(f"{p.emoji} {p.name}".strip() for p in result.suggestions) + "\n")
    if not result.relevant:
        print(result.message)
        return
    for n, passage in enumerate(p for p in result.passages if p.kind == "note"):
        print(f"[{n + 1}] {passage.breadcrumb}  ({passage.location}, score {passage.score:.4f})")
        snippet = passage.text if len(passage.text) < 400 else passage.text[:400] + "…"
        print("    " + snippet.replace("\n", "\n    "))


def cmd_search(args: argparse.Namespace, assistant: Assistant) -> int:
    if args.batch:
        for row in _rows(args.batch):
            query = row.get("query", "")
            try:
                line = assistant.search(query, args.k).to_prediction()
            except QueryError as exc:
                line = {"query": query, "persona": None, "suggestions": [], "passages": [], "error": str(exc)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        return 0
    if not args.query:
        raise UsageError("search needs a QUERY, or --batch FILE.jsonl")
    result = assistant.search(args.query, args.k)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print_result(result)
    return 0


def _rows(path: str) -> list[dict]:
    try:
        return load_jsonl(Path(path))
    except FileNotFoundError as exc:
        raise UsageError(f"--batch: no such file {path!r}") from exc
    except ValueError as exc:
        raise UsageError(f"--batch: {path!r} is not JSON lines ({exc})") from exc


# ----------------------------------------------------------------------- personas
def cmd_personas(args: argparse.Namespace, assistant: Assistant) -> int:
    catalog = assistant.catalog
    items = catalog.search(args.search, limit=args.limit) if args.search else [(p, 100.0) for p in catalog.personas]
    if args.json:
        print(json.dumps([{**p.to_dict(), "key": p.key, "score": s} for p, s in items], ensure_ascii=False))
        return 0
    if not items:
        print(f"no persona close to {args.search!r}")
    for p, s in items:
        score = f"  ({s:.0f})" if args.search else ""
        slots = f"  slots: {', '.join(p.slots)}  (fill with ask --set SLOT=VALUE)" if p.slots else ""
        print(f"{p.emoji or ' '} {p.name}{score}  [line {p.line}]{slots}")
    return 0


# --------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace, assistant: Assistant) -> int:
    from .evaluation import score

    gold = load_jsonl(Path(args.gold or DEFAULT_GOLD))
    started = time.perf_counter()
    preds = []
    for g in gold:
        line = assistant.search(g["query"]).to_prediction()
        if g.get("expect_phrase"):
            line["answer"] = assistant.engine.ask(g["query"]).text
        preds.append(line)
    result = score(gold, preds)
    result["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    a = result["ALL"]
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    print(f"gold: {args.gold or DEFAULT_GOLD} ({len(gold)} queries, {result['seconds']} s)")
    print(
        f"persona top-1   {fmt(a['persona_top1'])}  "
        + "  ".join(f"{k} {fmt(v)}" for k, v in sorted(result["persona_top1"].items()))
    )
    print(f"persona picked or suggested  {fmt(a['persona_offered'])}")
    print(f"notes hit@1     {fmt(a['notes_hit1'])}")
    print(f"notes hit@5     {fmt(a['notes_hit5'])}")
    print(f"none rejected   {fmt(a['none_rejection'])}")
    print(f"notes with a persona  {fmt(a['notes_with_persona'])}")
    if a["notes_top5_chars_mean"] is not None:
        print(f"top-5 passage size    {a['notes_top5_chars_mean']:.0f} characters on average")
    if a["answer_key_fact"] is not None:
        print(f"answer key fact {fmt(a['answer_key_fact'])}  (median answer {a['answer_median_chars']:.0f} characters)")
    return 0


# ---------------------------------------------------------------------- fit-router
def cmd_fit_router(args: argparse.Namespace, assistant: Assistant) -> int:
    from . import router_fit
    from .embeddings import model_key
    from .router import ROUTER_FILE

    path = Path(args.train or TRAIN_FILE)
    if not path.exists():
        raise UsageError(f"no training file at {path}: give one, e.g. fit-router ../shared/eval/train_queries.jsonl")
    retriever = assistant.retriever
    started = time.perf_counter()
    examples = router_fit.build_examples(retriever, load_jsonl(path))
    report = router_fit.cross_validate(examples, folds=args.folds)
    router = router_fit.fit(examples, fitted_with=model_key(assistant.settings))
    router.report = {"train_file": path.name, "examples": len(examples), "folds": args.folds, **report}
    out = Path(args.out or ROUTER_FILE)
    router.save(out)
    if args.json:
        print(json.dumps(router.report, indent=1))
        return 0
    print(
        f"{len(examples)} examples from {path} ({time.perf_counter() - started:.1f} s); "
        f"{args.folds}-fold cross-validation, each fold judged by a router fitted without it:"
    )
    for group, values in report.items():
        print(
            f"  {group:24s} "
            + "  ".join(
                f"{k} {v:.1%}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items() if v is not None
            )
        )
    print(f"router written to {out}")
    return 0


# ---------------------------------------------------------------------------- ask
def parse_slots(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set takes SLOT=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def resolve_persona(assistant: Assistant, text: str) -> Persona | None:
    """The same lookup as `personas --search` (fuzzy names), then a described need."""
    hits = assistant.catalog.search(text, limit=1)
    if hits:
        return hits[0][0]
    return assistant.retriever.resolve_persona(text)


def history_of(row: dict) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for turn in row.get("history") or []:
        role, content = turn.get("role"), str(turn.get("content", ""))
        if role == "user":
            messages.append(HumanMessage(content))
        elif role == "assistant":
            messages.append(AIMessage(content))
        else:
            raise UsageError(f"history roles are 'user' or 'assistant', got {role!r}")
    return messages


def batch_line(assistant: Assistant, row: dict) -> dict[str, Any]:
    """One prediction line with the answer (../shared/eval/README.md)."""
    query = row.get("query", "")
    answer = assistant.engine.ask(query, history=history_of(row))
    return {
        "query": query,
        "persona": answer.persona.name if answer.mode == "persona-picked" else None,
        "suggestions": [p.name for p in answer.suggestions],
        "passages": [p.to_prediction() for p in answer.retrieved],
        "answer": answer.text,
    }


def cmd_ask(args: argparse.Namespace, assistant: Assistant) -> int:
    if args.batch:
        for row in _rows(args.batch):
            try:
                line = batch_line(assistant, row)
            except QueryError as exc:
                line = {
                    "query": row.get("query", ""),
                    "persona": None,
                    "suggestions": [],
                    "passages": [],
                    "answer": "",
                    "error": str(exc),
                }
            print(json.dumps(line, ensure_ascii=False), flush=True)
        return 0
    if not args.question:
        raise UsageError("ask needs a QUESTION, or --batch FILE.jsonl")
    persona = None
    if args.persona:
        persona = resolve_persona(assistant, args.persona)
        if persona is None:
            raise UsageError(
                f"--persona: no persona matches {args.persona!r} "
                "(list them with: python -m assistant personas --search TEXT)"
            )
    slots = parse_slots(args.slots)
    if persona is not None:
        unknown = sorted(set(slots) - set(persona.slots))
        if unknown:
            raise UsageError(
                f"--set: {persona.name} has no slot {', '.join(unknown)} "
                f"(its slots: {', '.join(persona.slots) or 'none'})"
            )
        missing = [s for s in persona.slots if not slots.get(s)]
        if missing:
            raise UsageError(f"--set: {persona.name} needs " + " ".join(f"--set {s}=VALUE" for s in missing))
    stream = assistant.engine.stream(args.question, persona=persona, slots=slots)
    if not args.json and assistant.provider_error:
        print(f"note: {assistant.provider_error}", file=sys.stderr)
    for chunk in stream:
        if not args.json:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    answer = stream.answer
    if args.json:
        data = answer.to_dict()
        data["error"] = data["error"] or assistant.provider_error
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print()
    if answer.sources and answer.mode in ("notes", "extractive"):
        print("\nSources:")
        for n, s in enumerate(answer.sources, 1):
            print(f"  [{n}] {s.breadcrumb}  ({s.location})")
    if answer.verified is False:
        print("\n(unverified: the model's answer does not cite the passages it was given)")
    if answer.mode in ("persona-picked", "persona-prompt") and answer.prompt:
        print(f"\nPrompt:\n{answer.prompt}")
    if answer.suggestions and answer.mode in ("extractive", "notes", "none") and answer.persona_probability > 0.1:
        print("\nPersonas that may fit: " + ", ".join(p.name for p in answer.suggestions))
    print(f"\n— answered by {answer.provider}")
    return 0


# ------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant", description="Search and chat with your notes.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="find the persona or note passages for a query")
    s.add_argument("query", nargs="?")
    s.add_argument("-k", type=int, default=None, help="passages to return (default RETRIEVAL_K)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--batch", metavar="FILE.jsonl", help="one prediction line per `query` line, models loaded once")
    s.set_defaults(func=cmd_search)

    p = sub.add_parser("personas", help="list or fuzzy-search the persona catalog")
    p.add_argument("--search", metavar="TEXT")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_personas)

    e = sub.add_parser("eval", help="retrieval and answer scores over a gold file (default: the bundled set)")
    e.add_argument("gold", nargs="?")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    a = sub.add_parser("ask", help="answer a question from the notes, or chat with a persona")
    a.add_argument("question", nargs="?")
    a.add_argument("--persona", metavar="NAME", help="answer as this persona (name, typo or need)")
    a.add_argument(
        "--set",
        dest="slots",
        action="append",
        default=[],
        metavar="SLOT=VALUE",
        help="fill a template slot of the persona prompt",
    )
    a.add_argument("--json", action="store_true", help="one JSON object: answer, sources, persona, suggestions")
    a.add_argument(
        "--batch",
        metavar="FILE.jsonl",
        help="lines with `query` and optional `history`; one line per query with the answer",
    )
    a.set_defaults(func=cmd_ask)

    f = sub.add_parser("fit-router", help="refit the persona/notes/none decision on a labelled file, with CV")
    f.add_argument("train", nargs="?", help=f"labelled JSON lines (default {TRAIN_FILE})")
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--out", help="where to write the router (default: the packaged data/router.json)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fit_router)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .service import Assistant

    assistant = Assistant(get_settings())
    try:
        return args.func(args, assistant)
    except (QueryError, IndexMissingError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
