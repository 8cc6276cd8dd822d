"""The persona catalog: every "Act as ..." prompt in the notes, found by name or typo."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process, utils

ACT_AS = re.compile(r"^\s*act\s+as\s+(?:(?:a|an|the)\s+)?", re.IGNORECASE)
SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# "[query]", "[category]", "[your name]": a name of three letters or more per word. "[insert x]"
# is an instruction about a variable, not a slot to fill.
BRACKET_SLOT = re.compile(r"\[([a-z]{3,}(?: [a-z]{3,})?)\](?!\()")
# A placeholder word in a title ("position Interviewer") is lowercase; these never are slots.
LOWER_WORDS = {"a", "an", "the", "and", "or", "of", "for", "from", "to", "in", "on", "with", "as", "at", "by"}


# The prompts state their example request at the end: "My first request is …",
# "My first command is …", "Initial request is - …", "Starting query - …".
EXAMPLE_REQUEST = re.compile(
    r"(?:\bfirst|\binitial|\bstarting)\b[^.!?\n]{0,40}?(?:\bis\b|\bare\b|[-–:])\s*[:\-–]?\s*(?P<request>.+)$",
    re.IGNORECASE | re.DOTALL,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A prompt that is itself a jailbreak tells the model to drop its rules, policies or limits, or
# to act as if it had none. Role-play's own "do not break character" is not that.
_RULES = (
    r"(?:rules?|polic(?:y|ies)|restrictions?|guidelines?|limit(?:s|ations?)|filters?|censorship|confines"
    r"|safeguards?|ethics|morals?)"
)
JAILBREAK = re.compile(
    rf"\b(?:ignore|disregard|bypass|override|break(?:s|ing)?\s+(?:free\s+)?(?:of|from)|broken\s+free\s+of|free\s+(?:of|from)"
    rf"|(?:do|does)\s+not\s+(?:have\s+to\s+)?(?:abide\s+by|follow|obey|comply\s+with)|not\s+bound\s+by|no\s+longer\s+bound\s+by"
    rf"|without\s+(?:any\s+)?)\b[^.!?\n]{{0,60}}?\b{_RULES}\b"
    rf"|\b(?:no|not\s+have\s+any|none\s+of\s+(?:the|your))\s+{_RULES}\b"
    rf"|\bdo\s+anything\s+now\b",
    re.IGNORECASE,
)
# The opening that names the role ("I want you to act as a linux terminal."): it says less than
# the sentence after it about what the persona does.
ROLE_OPENING = re.compile(r"^\s*(?:i\s+want\s+you\s+to\s+)?(?:act|behave)\s+(?:as|like)\b", re.IGNORECASE)
ROLE_OPENING_MAX_WORDS = 14


@dataclass(frozen=True)
class PersonaRef:
    """A persona as an answer or a stored message names it: enough to show it and look it up
    again (the persona itself may since have been edited or deleted)."""

    key: str
    name: str
    emoji: str = ""
    probability: float | None = None  # how likely the router found it, for suggestions

    @property
    def label(self) -> str:
        return f"{self.emoji} {self.name}".strip()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PersonaRef:
        probability = data.get("probability")
        return cls(
            key=str(data.get("key", "")),
            name=str(data.get("name", "")),
            emoji=str(data.get("emoji", "")),
            probability=float(probability) if probability is not None else None,
        )


@dataclass(frozen=True)
class Persona:
    name: str
    title: str
    emoji: str
    prompt: str
    source: str
    line: int
    slots: tuple[str, ...] = field(default_factory=tuple)
    id: str = ""  # set for your own personas (stored in the history database)

    @property
    def key(self) -> str:
        """Unique id: the name, plus the line for a name that occurs twice ("Life Coach")."""
        return self.id or f"{self.name}@{self.line}"

    @property
    def is_own(self) -> bool:
        return bool(self.id)

    def ref(self, probability: float | None = None) -> PersonaRef:
        return PersonaRef(key=self.key, name=self.name, emoji=self.emoji, probability=probability)

    @property
    def label(self) -> str:
        """Its emoji and name, as a chat or a button names it ("🐧 Linux Terminal")."""
        return f"{self.emoji} {self.name}".strip()

    @property
    def stated_request(self) -> str:
        """The example request the prompt states ("My first request is …"), or ""."""
        found = list(EXAMPLE_REQUEST.finditer(self.prompt))
        return found[-1].group("request").strip(" \"“”'") if found else ""

    @property
    def example_request(self) -> str:
        """The example the prompt itself carries ("My first request is …"), else its last sentence."""
        if self.stated_request:
            return self.stated_request
        sentences = [s for s in SENTENCE_END.split(self.prompt.strip()) if s.strip()]
        return sentences[-1].strip() if sentences else ""

    @property
    def is_jailbreak(self) -> bool:
        """The prompt asks the model to drop its rules or pretend to have none: never suggested,
        never picked by a described need, only by its name."""
        return bool(JAILBREAK.search(self.prompt))

    @property
    def summary(self) -> str:
        """What the persona does, in a sentence: the title's own words when the prompt's first
        sentence only names the role, else that sentence."""
        sentences = [s.strip() for s in SENTENCE_END.split(self.prompt.strip()) if s.strip()]
        if not sentences:
            return self.name
        first = sentences[0]
        if len(sentences) > 1 and ROLE_OPENING.match(first) and len(first.split()) <= ROLE_OPENING_MAX_WORDS:
            return sentences[1]
        return first

    @property
    def first_line(self) -> str:
        """The prompt's first sentence: what the persona is, for lists."""
        sentences = [s for s in SENTENCE_END.split(self.prompt.strip()) if s.strip()]
        return sentences[0].strip() if sentences else ""

    @property
    def crosslingual_text(self) -> str:
        """What the cross-lingual model embeds of a persona of your own, as the ingest does a
        notes persona (its title, then its prompt). The name alone is embedded too, as a query,
        to meet the head of a request."""
        return f"{self.title or self.name}\n{self.prompt}"

    @property
    def embed_text(self) -> str:
        """What the notes model embeds for a persona of your own (notes personas are chunks)."""
        return f"{self.title or self.name}\n{self.prompt}"

    def fill(self, values: dict[str, str]) -> str:
        """The prompt with its template slots replaced; unknown slots stay as they are."""
        text = self.prompt
        for slot in self.slots:
            value = values.get(slot, "").strip()
            if not value:
                continue
            if f"{{{slot}}}" in text or f"[{slot}]" in text:
                text = text.replace(f"{{{slot}}}", value).replace(f"[{slot}]", value)
            else:  # a bare-word slot such as "position" in the interviewer prompt
                text = re.sub(rf"\b{re.escape(slot)}\s+{re.escape(slot)}\b", f"{value} {slot}", text, count=1)
        return text

    def to_dict(self) -> dict:
        data = asdict(self)
        data["slots"] = list(self.slots)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Persona:
        return cls(**{**data, "slots": tuple(data.get("slots", ()))})


def make_persona(name: str, prompt: str, emoji: str = "", id: str = "") -> Persona:
    """A persona of your own: `{slot}` variables in the prompt become its template slots."""
    name = " ".join(name.split())
    return Persona(
        name=name,
        title=f"Act as {name}",
        emoji=emoji.strip(),
        prompt=prompt.strip(),
        source="my personas",
        line=0,
        slots=detect_slots(name, prompt),
        id=id,
    )


def split_title(title: str) -> tuple[str, str] | None:
    """'🐧 Act as a Linux Terminal  ' -> ('🐧', 'Linux Terminal'); None when not a persona title."""
    t = title.strip()
    m = re.search(r"\bact\s+as\b", t, re.IGNORECASE)
    if not m:
        return None
    prefix, rest = t[: m.start()], t[m.start() :]
    if any(ch.isalnum() for ch in prefix):
        return None
    emoji = "".join(prefix.split()).strip("\ufe0f\u200d")
    name = ACT_AS.sub("", rest)
    name = name.strip().strip("\ufe0f\u200d").rstrip(":").strip()
    name = name.removeprefix("\ufe0f").strip()
    return (emoji, name) if name else None


def detect_slots(name: str, prompt: str) -> tuple[str, ...]:
    """Template slots: `{character}` style, and a lowercase placeholder word in the title."""
    slots = list(dict.fromkeys(SLOT.findall(prompt) + BRACKET_SLOT.findall(prompt)))
    for word in name.split():
        bare = word.strip("'\"")
        if (
            bare.isalpha()
            and bare.islower()
            and bare not in LOWER_WORDS
            and re.search(rf"\b{re.escape(bare)}\s+{re.escape(bare)}\b", prompt)
        ):
            slots.append(bare)
    return tuple(slots)


def normalize_name(text: str) -> str:
    """Compare names ignoring case, emoji, punctuation and a leading 'Act as a'."""
    s = unicodedata.normalize("NFKC", text).strip()
    s = re.sub(r"^[^\w']+", "", s)
    s = ACT_AS.sub("", s)
    s = re.sub(r"[^\w]+", " ", s.casefold())
    return " ".join(s.split())


def _common_words(personas: list[Persona], share: float = 0.25) -> frozenset[str]:
    """Words in at least a quarter of the prompts ("i", "want", "you", "act", "as", "the"):
    the catalog's own function words, which never tell personas apart."""
    if len(personas) < 8:
        return frozenset()
    counts: dict[str, int] = {}
    for p in personas:
        for word in set(normalize_name(p.prompt).split()):
            counts[word] = counts.get(word, 0) + 1
    return frozenset(w for w, n in counts.items() if n >= share * len(personas))


class PersonaCatalog:
    """In-memory catalog with fuzzy name lookup (rapidfuzz); loads from the index's JSON."""

    def __init__(self, personas: list[Persona]):
        self.personas = list(personas)
        self._names = [normalize_name(p.name) for p in self.personas]
        # Other ways to say a name: without its template slot words ("position Interviewer"
        # -> "interviewer"), without a parenthesis ("... Pathologist (SLP)"), or the abbreviation.
        self._aliases: list[tuple[str, int]] = [(n, i) for i, n in enumerate(self._names)]
        for i, p in enumerate(self.personas):
            plain = " ".join(w for w in p.name.split() if w.strip("'\"") not in p.slots)
            bare = re.sub(r"\s*\([^)]*\)", "", plain)
            extra = {normalize_name(plain), normalize_name(bare)} | {
                normalize_name(x) for x in re.findall(r"\(([^)]+)\)", p.name)
            }
            self._aliases += [(a, i) for a in extra - {self._names[i], ""}]
        self._alias_names = [a for a, _ in self._aliases]
        self._alias_words = np.array([len(a.split()) for a in self._alias_names])
        self._alias_owner = np.array([i for _, i in self._aliases], dtype=int)
        self.common_words = _common_words(self.personas)

    def __len__(self) -> int:
        return len(self.personas)

    @classmethod
    def load(cls, path: Path) -> PersonaCatalog:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls([Persona.from_dict(d) for d in data])

    def save(self, path: Path) -> None:
        Path(path).write_text(
            json.dumps([p.to_dict() for p in self.personas], ensure_ascii=False, indent=1), encoding="utf-8"
        )

    def get(self, name_or_key: str) -> Persona | None:
        """Exact lookup by key, or by name (the first of duplicates, in notes order)."""
        for p in self.personas:
            if p.key == name_or_key:
                return p
        wanted = normalize_name(name_or_key)
        for p, n in zip(self.personas, self._names):
            if n == wanted:
                return p
        return None

    def fuzzy_names(self, text: str, limit: int = 10, cutoff: float = 60.0) -> list[tuple[Persona, float]]:
        """Fuzzy name search, best first; ties keep notes order, so duplicates are deterministic."""
        query = normalize_name(text)
        if not query:
            return [(p, 100.0) for p in self.personas[:limit]]
        hits = process.extract(
            query, self._names, scorer=fuzz.WRatio, processor=utils.default_process, limit=None, score_cutoff=cutoff
        )
        hits.sort(key=lambda h: (-h[1], h[2]))
        return [(self.personas[i], float(score)) for _, score, i in hits[:limit]]

    def match_name(self, text: str, cutoff: float = 85.0) -> Persona | None:
        """The persona whose name is within Levenshtein reach of `text` (ratio >= cutoff).

        Ties (duplicate names such as "Life Coach") resolve to the first in notes order.
        """
        cand = normalize_name(text)
        if len(cand) < 3:
            return None
        hits = process.extract(cand, self._alias_names, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)
        if not hits:
            return None
        best = max(score for _, score, _ in hits)
        return self.personas[min(self._aliases[j][1] for _, score, j in hits if score == best)]

    def window_scores(self, text: str) -> np.ndarray:
        """For each persona, how closely some run of the text's words spells its name
        (rapidfuzz ratio over word windows of the name's length, 0-1): a name said in
        the middle of a request ("can you be a salesperson and …") still counts."""
        scores = np.zeros(len(self.personas), dtype=np.float32)
        words = normalize_name(text).split()
        if not words or not self.personas:
            return scores
        sizes = sorted({int(n) for n in self._alias_words if n <= len(words)})
        for n in sizes:
            windows = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
            cols = np.flatnonzero(self._alias_words == n)
            sims = process.cdist(windows, [self._alias_names[j] for j in cols], scorer=fuzz.ratio, workers=1)
            best = sims.max(axis=0) / 100.0
            np.maximum.at(scores, self._alias_owner[cols], best.astype(np.float32))
        return scores

    def subset_match(self, text: str) -> Persona | None:
        """The one persona whose name holds every word of `text` and is at least half covered
        by it ("r interpreter" -> "R Programming Interpreter"); None when several or none do."""
        words = set(normalize_name(text).split()) - self.common_words
        if not words:
            return None
        holders = {j for j, alias in enumerate(self._alias_names) if words <= set(alias.split())}
        if len({self._names[self._aliases[j][1]] for j in holders}) != 1:
            return None  # no name, or several, hold all the words
        covered = [self._aliases[j][1] for j in holders if 2 * len(words) >= len(self._alias_names[j].split())]
        return self.personas[min(covered)] if covered else None
