"""`python -m assistant search|personas|ask|eval|settings|export-model|mcp …`: the command line.

Commands import only what they use (a name lookup needs neither Chroma nor a model), so a
script that calls them pays for what it asks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.settings import get_settings
from assistant.core.text import QueryError
from assistant.core.vectorstore import IndexMissingError
from assistant.evaluation import LineError, answer_line, history_of, prediction  # noqa: F401 (the CLI's line format)

if TYPE_CHECKING:
    from assistant.answer.records import Answer
    from assistant.search.retrieval import SearchResult
    from assistant.service import Service


class UsageError(ValueError):
    """A command line that cannot run; the message names the flag that fixes it."""


def _rows(path: str, flag: str = "--batch") -> list[dict]:
    from assistant.evaluation import load_jsonl

    try:
        return load_jsonl(Path(path))
    except FileNotFoundError as exc:
        raise UsageError(f"{flag}: no such file {path!r}") from exc
    except ValueError as exc:
        raise UsageError(f"{flag}: {path!r} is not JSON lines ({exc})") from exc


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


def cmd_search(args: argparse.Namespace, service: Service) -> int:
    if args.batch:
        for row in _rows(args.batch):
            query = row.get("query", "")
            try:
                line = service.search(query, args.k).to_prediction()
            except QueryError as exc:
                line = {"query": query, "persona": None, "suggestions": [], "passages": [], "error": str(exc)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        return 0
    if not args.query:
        raise UsageError("search needs a QUERY, or --batch FILE.jsonl")
    result = service.search(args.query, args.k)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print_result(result)
    return 0


# ----------------------------------------------------------------------- personas
def cmd_personas(args: argparse.Namespace, service: Service) -> int:
    catalog = service.catalog
    items = (
        catalog.fuzzy_names(args.search, limit=args.limit) if args.search else [(p, 100.0) for p in catalog.personas]
    )
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
def cmd_eval(args: argparse.Namespace, service: Service) -> int:
    """Scores of this index on a labelled file of your own (the shared eval line format)."""
    from assistant.evaluation import score

    gold = _rows(args.gold, "GOLD")
    started = time.perf_counter()
    preds = [prediction(service, g, with_answer=bool(g.get("expect_phrase"))) for g in gold]
    result = score(gold, preds, group=args.by)
    result["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    a = result["ALL"]
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    print(f"gold: {args.gold} ({len(gold)} lines, {result['seconds']} s)")
    print("persona top-1   " + fmt(a["persona_top1"]) + "  " + _groups(result["persona_top1"], fmt))
    print(f"persona picked or suggested  {fmt(a['persona_offered'])}")
    print("notes hit@5     " + fmt(a["notes_hit5"]) + "  " + _groups(result["notes_hit5"], fmt))
    print(f"notes hit@1     {fmt(a['notes_hit1'])}")
    print("none rejected   " + fmt(a["none_rejection"]) + "  " + _groups(result["none_rejection"], fmt))
    print(f"notes with a persona  {fmt(a['notes_with_persona'])}")
    if a["answer_key_fact"] is not None:
        print(
            "answer key fact " + fmt(a["answer_key_fact"]) + "  " + _groups(result["answer_key_fact"], fmt)
            + f"  (median answer {a['answer_median_chars']:.0f} characters)"
        )  # fmt: skip
    return 0


def _groups(values: dict[str, float], fmt: Any) -> str:
    return "  ".join(f"{k} {fmt(v)}" for k, v in sorted(values.items()))


# ---------------------------------------------------------------------------- ask
def parse_slots(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set takes SLOT=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def cmd_ask(args: argparse.Namespace, service: Service) -> int:
    from assistant.answer.records import TextChunk

    if args.batch:
        for row in _rows(args.batch):
            print(json.dumps(prediction(service, row), ensure_ascii=False), flush=True)
        return 0
    if not args.question:
        raise UsageError("ask needs a QUESTION, or --batch FILE.jsonl")
    persona = None
    if args.persona:
        persona = service.resolve_persona(args.persona)
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
    stream = service.stream(args.question, persona=persona, slots=slots)
    if not args.json and service.provider_error:
        print(f"note: {service.provider_error}", file=sys.stderr)
    for event in stream:
        if isinstance(event, TextChunk) and not args.json:
            sys.stdout.write(event.text)
            sys.stdout.flush()
    answer = stream.answer
    if args.json:
        data = answer.to_dict()
        data["error"] = data["error"] or service.provider_error
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print_answer_footer(answer)
    return 0


def print_answer_footer(answer: Answer) -> None:
    print()
    if answer.sources and answer.cites_notes:
        print("\nSources:")
        for n, s in enumerate(answer.sources, 1):
            print(f"  [{n}] {s.breadcrumb}  ({s.location})")
    if answer.verified is False:
        print("\n(unverified: the model's answer does not cite the passages it was given)")
    if answer.mode in ("persona-picked", "persona-prompt") and answer.prompt:
        print(f"\nPrompt:\n{answer.prompt}")
    if answer.suggestions and answer.mode in ("extractive", "notes", "none") and answer.persona_probability > 0.1:
        print("\nPersonas that may fit: " + ", ".join(p.name for p in answer.suggestions))
    where = f", {answer.where}" if answer.where else ""
    print(f"\n— answered by {answer.provider}{where}")


# ----------------------------------------------------------------------- settings
def cmd_settings(args: argparse.Namespace, service: Service) -> int:
    from assistant.core.settings import env_example

    if args.env_example:
        sys.stdout.write(env_example())
        return 0
    data = service.settings.model_dump(mode="json")
    if data.get("openai_api_key"):
        data["openai_api_key"] = "***"
    print(json.dumps(data, indent=1))
    return 0


# ------------------------------------------------------------------- export-model
def cmd_export_model(args: argparse.Namespace, service: Service) -> int:
    """The one-time ONNX export of the notes model (torch is imported for this only)."""
    from assistant.core.embeddings import ExportError, export_dir, export_onnx, has_export

    settings = service.settings
    if has_export(settings):
        print(f"the notes model is exported already: {export_dir(settings)}")
        return 0
    started = time.perf_counter()
    try:
        where = export_onnx(settings)
    except ExportError as exc:
        print(f"error: {exc}; the model will run under sentence-transformers (torch)", file=sys.stderr)
        return 1
    print(f"exported the notes model to {where} in {time.perf_counter() - started:.1f} s")
    return 0


# ---------------------------------------------------------------------------- mcp
def cmd_mcp(args: argparse.Namespace, service: Service) -> int:
    """The MCP server (assistant.mcp_server) until the client goes; it starts without an index
    too, and then answers every call with how to build one."""
    from assistant.mcp_server import serve

    serve(service, http_port=args.http, user=args.user, include_jailbreaks=args.include_jailbreaks)
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

    a = sub.add_parser("ask", help="answer a question from the notes, or chat with a persona")
    a.add_argument("question", nargs="?")
    a.add_argument("--persona", metavar="NAME", help="answer as this persona (name, typo or need)")
    a.add_argument(
        "--set", dest="slots", action="append", default=[], metavar="SLOT=VALUE",
        help="fill a template slot of the persona prompt",
    )  # fmt: skip
    a.add_argument("--json", action="store_true", help="one JSON object: answer, sources, persona, suggestions")
    a.add_argument(
        "--batch", metavar="FILE.jsonl", help="lines with `query` and optional `history`; one line each with the answer"
    )
    a.set_defaults(func=cmd_ask)

    e = sub.add_parser("eval", help="retrieval and answer scores on a labelled file of your own")
    e.add_argument("gold", help="labelled JSON lines (the format of ../shared/eval/README.md)")
    e.add_argument("--by", default="subgroup", help="group the figures by this field (subgroup, style, lang)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export-model", help="export the notes model to ONNX once (`make install` runs it)")
    x.set_defaults(func=cmd_export_model)

    t = sub.add_parser("settings", help="the settings in effect, or .env.example generated from them")
    t.add_argument("--env-example", action="store_true", help="print .env.example (every setting, described)")
    t.set_defaults(func=cmd_settings)

    m = sub.add_parser("mcp", help="serve the notes and the personas to MCP clients (stdio, or --http)")
    m.add_argument("--http", type=int, metavar="PORT", help="streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio")
    m.add_argument("--user", default="", help="whose own personas to serve, with sign-in on (default: the local user)")
    m.add_argument("--include-jailbreaks", action="store_true", help="serve the prompts that are themselves jailbreaks")
    m.set_defaults(func=cmd_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from assistant.service import Service

    service = Service(get_settings())
    try:
        return args.func(args, service)
    except (QueryError, IndexMissingError, UsageError, LineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
