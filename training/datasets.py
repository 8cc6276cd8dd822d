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
AUTHOR_E_PERSONAS = DATA / "train_e_personas.jsonl"  # a fifth author: scripts, typos in sentences, errands
AUTHOR_E_NOTES = DATA / "train_e_notes.jsonl"  # the same author's notes questions, on both trees
CONVERSATIONS = DATA / "train_conversations.jsonl"  # turns in context, on both trees
LOGSEQ_QUERIES = DATA / "logseq_queries.jsonl"
LOGSEQ_TREE = HERE / "trees" / "logseq" / "pages"
TRAIN_FILES = [AUTHOR_A, AUTHOR_B_PERSONAS, AUTHOR_B_NOTES, AUTHOR_E_PERSONAS, AUTHOR_E_NOTES, CONVERSATIONS]
# Turns whose message is complete on its own: routed like a first message of a chat.
STANDALONE_TURNS = ("new_topic", "new_topic_lang", "off_topic")


def load_rows(files: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for path in files:
        with open(path, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def routing_rows(rows: list[dict], tree: str = "bundled") -> list[dict]:
    """Lines the router is fitted on for one notes tree: single messages (a first message, or a
    turn complete on its own); a follow-up alone means nothing, its context decides."""
    return [
        r
        for r in rows
        if r.get("tree", "bundled") == tree and (not r.get("history") or r.get("subgroup") in STANDALONE_TURNS)
    ]


def turn_rows(rows: list[dict]) -> list[dict]:
    """Lines asked inside a running chat (with a `history`): what the context model is fitted on."""
    return [r for r in rows if r.get("history")]
