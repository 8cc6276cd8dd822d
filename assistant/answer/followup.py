"""Does a chat message refer back to the conversation? ("and its disadvantages?",
"what about write-behind?", "how does it scale?")

Only then is it searched together with the previous question, and only when that search
finds the notes better than the message alone (`answering._search`): "explain CAP theorem"
after any other topic is searched alone.
"""

from __future__ import annotations

import re

# Ellipsis openers and pronouns that need an antecedent (English, the notes' language).
REFERS_BACK = re.compile(
    r"^\s*(?:and|but|also|so|or|then|what about|how about|what of|same for|and what about)\b"
    r"|\b(?:it|its|it's|they|them|their|theirs|this|that|these|those|the former|the latter|the same)\b",
    re.IGNORECASE,
)


def refers_back(message: str) -> bool:
    return bool(REFERS_BACK.search(message))
