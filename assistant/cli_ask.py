"""`python -m assistant ask "QUESTION" [--persona NAME] [--set slot=value ...] [--json]`."""

from __future__ import annotations

import json
import sys


def add_ask_parser(sub) -> None:
    a = sub.add_parser("ask", help="answer a question from the notes, or chat with a persona")
    a.add_argument("question")
    a.add_argument("--persona", metavar="NAME", help="answer as this persona (name, typo or need)")
    a.add_argument("--set", dest="slots", action="append", default=[], metavar="SLOT=VALUE",
                   help="fill a template slot of the persona prompt")
    a.add_argument("--json", action="store_true", help="one JSON object: answer, sources, persona, provider, error")
    a.set_defaults(func=cmd_ask)


def _slots(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"error: --set takes SLOT=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def cmd_ask(args, assistant) -> int:
    engine = assistant.engine
    persona = None
    if args.persona:
        result = assistant.search(args.persona)
        persona = result.persona or assistant.retriever.find_persona(args.persona)
        if persona is None:
            print(f"error: no persona matches {args.persona!r} (try: python -m assistant personas --search ...)",
                  file=sys.stderr)
            return 2
    final = None
    stream_out = not args.json
    if stream_out and assistant.provider_error:
        print(f"note: {assistant.provider_error}", file=sys.stderr)
    for item in engine.stream(args.question, persona=persona, slots=_slots(args.slots)):
        if isinstance(item, str):
            if stream_out:
                sys.stdout.write(item)
                sys.stdout.flush()
        else:
            final = item
    data = final.to_dict()
    if args.json:
        if assistant.provider_error and not data["error"]:
            data["error"] = assistant.provider_error
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print()
    if final.sources and final.mode not in ("persona", "persona-picked"):
        print("\nSources:")
        for s in data["sources"]:
            print(f"  [{s['n']}] {s['breadcrumb']}  ({s['source']}:{s['first_line']}-{s['last_line']})")
    if final.mode == "persona-picked" and final.prompt:
        print(f"\nPrompt:\n{final.prompt}")
    print(f"\n— answered by {final.provider}")
    return 0
