"""Retrieval scores over a gold file, with the definitions of the shared eval scorer.

persona top-1 (names compared ignoring case, emoji, punctuation and "Act as a"), notes
hit@1/hit@5 (a passage hits when its breadcrumb holds an expected title, "A > B" meaning
adjacent titles, or its text holds the expected phrase), none rejection, and the mean
size of the top-5 passages.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.core.personas import normalize_name
from assistant.core.text import IMAGE as _IMAGE
from assistant.core.text import LINK_HEADING as _LINK_HEADING
from assistant.core.text import MD_LINK as _MDLINK
from assistant.core.text import QueryError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from assistant.answer.records import Answer


def _title_parts(title: str) -> set[str]:
    t = unicodedata.normalize("NFKC", title).strip().removesuffix(">>>")
    t = _IMAGE.sub("", t)
    t = _LINK_HEADING.sub("\x00", t).replace("****", "\x00")
    t = _MDLINK.sub(lambda m: m.group(1), t)
    t = t.replace("**", "").replace("__", "").replace("\u2015", "\x00").replace(" / ", "\x00")
    parts = [re.sub(r"\s+", " ", p).casefold().strip(" .:") for p in t.split("\x00")]
    parts = [p for p in parts if p]
    return set(parts) | ({" / ".join(parts)} if len(parts) > 1 else set())


def _norm_text(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).casefold().replace("**", "").replace("__", "").replace("`", "")
    return re.sub(r"\s+", " ", s).strip()


def passage_hit(passage: dict, expect_any: list[str], phrase: str | None) -> bool:
    elems = [_title_parts(x) for x in passage.get("path") or []]
    for expected in expect_any:
        want = [_single(x) for x in expected.split(" > ")]
        for i in range(len(elems) - len(want) + 1):
            if all(want[j] in elems[i + j] for j in range(len(want))):
                return True
    return bool(phrase) and _norm_text(phrase) in _norm_text(passage.get("text", ""))


def _single(title: str) -> str:
    t = unicodedata.normalize("NFKC", title).strip().removesuffix(">>>")
    t = _MDLINK.sub(lambda m: m.group(1), t).replace("**", "").replace("__", "")
    return re.sub(r"\s+", " ", t).casefold().strip(" .:")


def load_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def score(gold: list[dict], predictions: list[dict], group: str = "subgroup") -> dict:
    """Scores overall ("ALL") and per group of lines (`group`: "subgroup", or "style" or "lang"
    where a file has them), with the shared scorer's definitions."""
    by_query = {" ".join(p["query"].split()): p for p in predictions}
    persona = defaultdict(lambda: [0, 0, 0])  # top-1, picked or suggested, lines
    notes = defaultdict(lambda: [0, 0, 0, 0, 0, 0])  # hit@1, hit@5, key fact, with answer, with persona, lines
    none = defaultdict(lambda: [0, 0])
    sizes: list[int] = []
    answer_sizes: list[int] = []
    for g in gold:
        p = by_query.get(" ".join(g["query"].split()), {})
        picked = normalize_name(p.get("persona") or "")
        sub = str(g.get(group) or g.get("subgroup") or "all")
        if g["kind"] == "persona":
            want = normalize_name(g["expect"])
            names = [picked] + [normalize_name(x) for x in (p.get("suggestions") or [])[:3]]
            persona[sub][0] += bool(picked) and picked == want
            persona[sub][1] += want in names
            persona[sub][2] += 1
        elif g["kind"] == "notes":
            passages = (p.get("passages") or [])[:5]
            hits = [passage_hit(x, g["expect_any"], g.get("expect_phrase")) for x in passages]
            row = notes[sub]
            row[0] += bool(hits and hits[0])
            row[1] += any(hits)
            row[4] += bool(picked)
            row[5] += 1
            sizes.append(sum(len(x.get("text", "")) for x in passages))
            if "answer" in p and g.get("expect_phrase"):
                text = str(p.get("answer") or "")
                row[2] += _norm_text(g["expect_phrase"]) in _norm_text(text)
                row[3] += 1
                answer_sizes.append(len(text))
        else:
            none[sub][0] += not picked
            none[sub][1] += 1

    def ratio(d: dict, a: int, b: int) -> float | None:
        num, den = sum(v[a] for v in d.values()), sum(v[b] for v in d.values())
        return num / den if den else None

    return {
        "persona_top1": {k: v[0] / v[2] for k, v in persona.items()},
        "persona_offered": {k: v[1] / v[2] for k, v in persona.items()},
        "notes_hit1": {k: v[0] / v[5] for k, v in notes.items()},
        "notes_hit5": {k: v[1] / v[5] for k, v in notes.items()},
        "answer_key_fact": {k: v[2] / v[3] for k, v in notes.items() if v[3]},
        "none_rejection": {k: v[0] / v[1] for k, v in none.items()},
        "counts": {
            **{f"persona/{k}": v[2] for k, v in persona.items()},
            **{f"notes/{k}": v[5] for k, v in notes.items()},
            **{f"none/{k}": v[1] for k, v in none.items()},
        },
        "ALL": {
            "persona_top1": ratio(persona, 0, 2),
            "persona_offered": ratio(persona, 1, 2),
            "notes_hit1": ratio(notes, 0, 5),
            "notes_hit5": ratio(notes, 1, 5),
            "none_rejection": ratio(none, 0, 1),
            "notes_with_persona": ratio(notes, 4, 5),
            "notes_top5_chars_mean": sum(sizes) / len(sizes) if sizes else None,
            "answer_key_fact": ratio(notes, 2, 3),
            "answer_median_chars": sorted(answer_sizes)[len(answer_sizes) // 2] if answer_sizes else None,
        },
    }


# ------------------------------------------------------------------ prediction lines
class LineError(ValueError):
    """A labelled line that cannot be read (a history turn of an unknown role)."""


class Answers(Protocol):
    """What a prediction line needs of the service (the CLI and training pass theirs)."""

    def search(self, query: str) -> Any: ...

    def stream(self, question: str, history: Sequence[BaseMessage] = ()) -> Any: ...


def prediction(service: Answers, row: dict, with_answer: bool = True) -> dict[str, Any]:
    """One prediction line (../shared/eval/README.md): the route's persona and suggestions, the
    passages and, when asked, the answer shown to the user (with the line's `history`)."""
    query = row.get("query", "")
    try:
        if not with_answer:
            return service.search(query).to_prediction()
        answer = service.stream(query, history=history_of(row)).answer
    except QueryError as exc:
        return {"query": query, "persona": None, "suggestions": [], "passages": [], "answer": "", "error": str(exc)}
    return answer_line(query, answer)


def answer_line(query: str, answer: Answer) -> dict[str, Any]:
    """An answer as a prediction line (`ask --batch`), with the sources it cites."""
    return {
        "query": query,
        "persona": answer.persona.name if answer.mode == "persona-picked" and answer.persona else None,
        "suggestions": [p.name for p in answer.suggestions],
        "passages": [p.to_prediction() for p in answer.retrieved],
        "answer": answer.text,
        # What the answer cites (path, file and lines), as `ask --json` gives: empty for "nothing relevant".
        "sources": [{"n": n, **p.to_dict()} for n, p in enumerate(answer.sources, 1)] if answer.cites_notes else [],
    }


def history_of(row: dict) -> list[BaseMessage]:
    """A line's `history` (role and content per turn) as chat messages."""
    from langchain_core.messages import AIMessage, HumanMessage

    messages: list[BaseMessage] = []
    for turn in row.get("history") or []:
        role, content = turn.get("role"), str(turn.get("content", ""))
        if role == "user":
            messages.append(HumanMessage(content))
        elif role == "assistant":
            messages.append(AIMessage(content))
        else:
            raise LineError(f"history roles are 'user' or 'assistant', got {role!r}")
    return messages
