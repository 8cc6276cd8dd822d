"""`python -m ingest [PATH] [--rebuild] [--json]`: load the notes tree into the index."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.core.settings import get_settings

from .pipeline import IngestError, run_ingest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, help="a notes file or folder (default: NOTES_PATH)")
    parser.add_argument("--rebuild", action="store_true", help="re-embed everything instead of reusing vectors")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the counts")
    parser.add_argument(
        "--crosslingual",
        choices=["now", "later"],
        default="now",
        help="embed the cross-lingual views now (default), or leave them to the app to fill in behind",
    )
    args = parser.parse_args(argv)
    settings = get_settings()

    bar = None
    progress = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        def progress(stage: str, done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, unit="chunk", desc="ingest", file=sys.stderr)
            bar.set_description(stage)
            bar.n = done
            bar.refresh()

    try:
        report = run_ingest(
            settings, args.path, rebuild=args.rebuild, progress=progress, crosslingual=args.crosslingual
        )
    except IngestError as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}))
        else:
            print(f"ingest failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ingest interrupted: the previous index is still in use", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()

    if args.json:
        data = report.to_dict()
        print(
            json.dumps(
                {
                    k: data[k]
                    for k in (
                        "files",
                        "chunks",
                        "personas",
                        "added",
                        "updated",
                        "removed",
                        "unchanged",
                        "skipped",
                        "problems",
                        "searchable_seconds",
                        "seconds",
                    )
                },
                ensure_ascii=False,
            )
        )
    else:
        print(
            f"{report.files} files, {report.chunks} chunks, {report.personas} personas: "
            f"{report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged ({report.seconds:.1f} s)"
        )
        for problem in report.problems:
            label = "warning" if problem.warning else "skipped"
            print(f"  {label}: {problem.where}: {problem.message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
