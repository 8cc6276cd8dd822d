"""Slash commands typed in a chat: "/" plus a persona's name (exact or misspelt) picks it, and
what follows a newline is the first message to it; "/notes …" asks the notes whatever the
message sounds like; "/" alone lists the favourites. A "/word" that names no persona closely
("/etc/hosts" in a terminal chat) is ordinary text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from assistant.core.personas import Persona

CommandKind = Literal["persona", "notes", "favourites"]
PREFIX = "/"
NOTES = "notes"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    rest: str = ""  # the message that comes with it (after the newline, or after "/notes")
    persona: Persona | None = None


def parse(text: str, find_persona: Callable[[str], Persona | None]) -> Command | None:
    """The command a message is, or None when it is an ordinary message."""
    stripped = str(text or "").strip()
    if not stripped.startswith(PREFIX):
        return None
    if stripped == PREFIX:
        return Command("favourites")
    head, _, rest = stripped[len(PREFIX) :].partition("\n")
    word, _, tail = head.partition(" ")
    if word.casefold() == NOTES:
        return Command("notes", rest=" ".join(f"{tail}\n{rest}".split()))
    if not head.strip() or PREFIX in head.strip():  # "/etc/hosts", "/usr/bin": paths, not names
        return None
    persona = find_persona(head.strip())
    return Command("persona", rest=rest.strip(), persona=persona) if persona is not None else None
