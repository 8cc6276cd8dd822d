"""The labelled files (copies of the shared eval set's training files, and the Logseq tree with
its questions), so that a fresh clone can refit and judge."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
AUTHOR_A = DATA / "train_queries.jsonl"  # one author: personas, notes, none
AUTHOR_B_PERSONAS = DATA / "train_d_personas.jsonl"  # another author: personas
AUTHOR_B_NOTES = DATA / "train_d_notes.jsonl"  # the same other author: notes and none, with styles
LOGSEQ_QUERIES = DATA / "logseq_queries.jsonl"
LOGSEQ_TREE = HERE / "trees" / "logseq" / "pages"
TRAIN_FILES = [AUTHOR_A, AUTHOR_B_PERSONAS, AUTHOR_B_NOTES]


def load_rows(files: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for path in files:
        with open(path, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows
