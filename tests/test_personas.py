"""The persona catalog alone: no model, no store."""

from __future__ import annotations

import pytest

from assistant.core.personas import Persona, PersonaCatalog, detect_slots, make_persona, split_title


def persona(name: str, prompt: str = "I want you to act as someone.", line: int = 1) -> Persona:
    return Persona(
        name=name,
        title=f"Act as a {name}",
        emoji="",
        prompt=prompt,
        source="n.md",
        line=line,
        slots=detect_slots(name, prompt),
    )


@pytest.fixture()
def catalog() -> PersonaCatalog:
    return PersonaCatalog(
        [
            persona("Linux Terminal", line=1),
            persona("SQL terminal", line=2),
            persona("position Interviewer", "ask me questions for the position position", line=3),
            persona("R Programming Interpreter", line=4),
            persona("Dream Interpreter", line=5),
            persona("Speech-Language Pathologist (SLP)", line=6),
            persona("Life Coach", line=7),
            persona("Life Coach", "Summarize [title] by [author].", line=8),
        ]
    )


def test_title_split_handles_the_export_variants():
    assert split_title("🐧 Act as a Linux Terminal  ") == ("🐧", "Linux Terminal")
    assert split_title("👨‍🍳 Act As A Chef  ") == ("👨‍🍳", "Chef")
    assert split_title("️ 💡 Act as a Gnomist  ") == ("💡", "Gnomist")
    assert split_title("💇 ️Act as a Personal Stylist  ") == ("💇", "Personal Stylist")
    assert split_title("Act as Tech Reviewer:") == ("", "Tech Reviewer")
    assert split_title("Interact as a team") is None


def test_slots_are_detected_and_filled(catalog):
    coach = catalog.personas[-1]
    assert coach.slots == ("title", "author")
    assert coach.fill({"title": "Atomic Habits", "author": "James Clear"}) == "Summarize Atomic Habits by James Clear."
    assert detect_slots("Linux Terminal", "use curly brackets {like this}") == ()


def test_names_by_levenshtein_alias_and_all_words(catalog):
    assert catalog.match_name("linx termnal").name == "Linux Terminal"
    assert catalog.match_name("interviewer").name == "position Interviewer"
    assert catalog.match_name("speech-language pathologist").line == 6
    assert catalog.match_name("slp").line == 6
    assert catalog.match_name("life coach").line == 7  # duplicates: the first in notes order
    assert catalog.match_name("cooking") is None
    assert catalog.subset_match("r interpreter").name == "R Programming Interpreter"
    assert catalog.subset_match("terminal") is None  # two names hold it
    assert catalog.subset_match("interpreter") is None
    assert catalog.subset_match("programming") is None  # covers too little of the name


def test_fuzzy_search_ranks_duplicates_in_notes_order(catalog):
    hits = catalog.fuzzy_names("life coch", limit=3)
    assert [p.line for p, _ in hits[:2]] == [7, 8]


def test_example_request_and_views_come_from_the_prompt():
    p = persona(
        "Travel Guide",
        "I want you to act as a travel guide. My first suggestion request is "
        '"I am in Istanbul and I want to visit only museums."',
    )
    assert p.example_request == "I am in Istanbul and I want to visit only museums."
    assert p.first_line == "I want you to act as a travel guide."
    q = persona("Excel Sheet", "I want you to act as a text based excel. First, reply me the empty sheet.")
    assert q.example_request == "First, reply me the empty sheet."  # no "is": the last sentence
    assert (
        persona("X", "Just one sentence without an example").example_request == "Just one sentence without an example"
    )


def test_name_windows_find_a_name_inside_a_sentence(catalog):
    scores = catalog.window_scores("hey could you be my life coch for a week")
    best = catalog.personas[int(scores.argmax())]
    assert best.name == "Life Coach" and 0.85 < scores.max() < 1.0
    assert catalog.window_scores("").max() == 0.0
    assert catalog.window_scores("sql terminal please")[1] == 1.0


def test_catalog_function_words_come_from_the_prompts():
    prompts = [
        f"I want you to act as a {w}. You will help me."
        for w in ("poet", "chef", "coach", "doctor", "lawyer", "singer", "pilot", "farmer")
    ]
    catalog = PersonaCatalog([persona(n.split(". ")[0].split()[-1].title(), n, line=i) for i, n in enumerate(prompts)])
    assert {"i", "want", "you", "act", "as", "will"} <= catalog.common_words
    assert "poet" not in catalog.common_words


def test_own_persona_slots_and_key():
    mine = make_persona("  Code   Reviewer ", "Review this {language} code for {focus}.", "🧐", id="mine-1")
    assert mine.name == "Code Reviewer" and mine.slots == ("language", "focus") and mine.key == "mine-1"
    assert mine.is_own and mine.fill({"language": "Go", "focus": "races"}) == "Review this Go code for races."
