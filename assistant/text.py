"""Small text helpers shared by retrieval and answering: query cleaning, compact passages."""

from __future__ import annotations

import re
import unicodedata

IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK_HEADING = re.compile(r"\[\s*\**\s*Link\s*\**\s*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
URL = re.compile(r"https?://\S+")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class QueryError(ValueError):
    """A query that cannot be searched; the message is meant for the user."""


def clean_query(query: str | None, max_chars: int) -> str:
    """Strip control characters and outer space; refuse empty input; cap the length."""
    if query is None:
        raise QueryError("Please type a question or a persona name: the query is empty.")
    text = CONTROL.sub(" ", unicodedata.normalize("NFC", str(query)))
    text = " ".join(text.split())
    if not text:
        raise QueryError("Please type a question or a persona name: the query is empty.")
    return text[:max_chars]


def compact(text: str) -> str:
    """A passage as an LLM or a reader needs it: link text kept, URLs and images dropped."""
    text = IMAGE.sub("", text)
    text = LINK_HEADING.sub("", text)
    text = re.sub(r"\s*>>>\s*$", "", text, flags=re.MULTILINE)
    text = MD_LINK.sub(lambda m: m.group(1), text)
    lines = [line.rstrip() for line in text.split("\n") if line.strip() not in ("", "-")]
    return dedent_bullets("\n".join(lines))


def dedent_bullets(text: str) -> str:
    """Shift an outline excerpt left so its shallowest bullet starts the line; code lines
    already further left keep their place."""
    lines = text.split("\n")
    bullets = [len(line) - len(line.lstrip(" ")) for line in lines if line.lstrip(" ").startswith("- ")]
    cut = min(bullets, default=0)
    return "\n".join(line[min(cut, len(line) - len(line.lstrip(" "))):] for line in lines)
