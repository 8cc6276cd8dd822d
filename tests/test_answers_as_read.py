"""Answers a reader can trust: wrapped prose quoted as whole sentences, lists whole or marked as
cut, both parts of a two-part question, "tell me about X" opening with X, and no passage from an
unrelated area. A small tree written here (hard-wrapped Markdown), real models."""

from __future__ import annotations

import re

import pytest

from assistant.core.text import units_of
from tests.conftest import make_settings

KETTLE = """# Descaling a kettle

Limescale builds up in a kettle wherever the water is hard, and it slows every boil
because the element has to heat through the crust first. A monthly descale keeps the
element clean. Fill the kettle halfway with equal parts white vinegar and water, bring it
to the boil, then leave it to soak for an hour before you rinse it three times with fresh
water. Citric acid works as well and leaves no smell behind, which matters if you make
green tea.

Steps for a citric acid descale:
1. Dissolve two spoonfuls of citric acid in half a litre of water.
2. Pour the solution into the kettle.
3. Boil it once and switch the kettle off.
4. Wait twenty minutes while the scale dissolves.
5. Pour the solution away down the sink.
6. Rinse the kettle twice with clean water.
"""

SPICES = """# Spice drawer

Spices that keep their flavour for two years or more in a closed jar:
- Whole cloves
- Cinnamon sticks
- Star anise
- Black peppercorns
- Cumin seeds
- Coriander seeds
- Cardamom pods
- Nutmeg
- Allspice berries
- Fenugreek seeds
- Mustard seeds
- Dried chillies
"""

BIKE = """# Bicycle chain

A bicycle chain is the loop of linked rollers that carries the force of the pedals to the
rear wheel. It should be cleaned and oiled every few hundred kilometres.

## Disadvantages of a dry chain

A dry chain wears the cassette faster, squeaks on every turn of the pedals and can snap
under load on a steep climb.
"""


@pytest.fixture(scope="module")
def tree_service(tmp_path_factory):
    from assistant.service import Service
    from ingest.pipeline import run_ingest

    root = tmp_path_factory.mktemp("read") / "notes"
    root.mkdir()
    (root / "Kettle.md").write_text(KETTLE, encoding="utf-8")
    (root / "Spices.md").write_text(SPICES, encoding="utf-8")
    (root / "Bicycle.md").write_text(BIKE, encoding="utf-8")
    settings = make_settings(tmp_path_factory.mktemp("read-store"), root)
    run_ingest(settings)
    return Service(settings)


def sentences_whole(answer_text: str, source: str) -> None:
    """Every quoted line of prose is a run of whole sentences of the source."""
    flat = " ".join(source.split())
    for line in answer_text.splitlines():
        body = re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", line).strip()
        if not body or body.startswith(("**", "From your notes", "*…")):
            continue
        assert body in flat, body
        assert body[0].isupper() or body[0].isdigit(), body
        assert body.endswith((".", ":", "!", "?")), body


def test_wrapped_prose_is_read_as_sentences():
    units = units_of(KETTLE)
    texts = [u.text for u in units]
    assert "Limescale builds up in a kettle wherever the water is hard, and it slows every boil " \
           "because the element has to heat through the crust first." in texts  # fmt: skip
    assert all(not t.endswith(("boil", "bring it", "behind, which matters if you make")) for t in texts)
    assert "1. Dissolve two spoonfuls of citric acid in half a litre of water." in texts  # items stay apart


def test_a_wrapped_answer_quotes_whole_sentences(tree_service):
    answer = tree_service.engine.ask("how long should the vinegar sit in the kettle before rinsing?")
    assert "leave it to soak for an hour" in " ".join(answer.text.split())
    sentences_whole(answer.text, KETTLE)


def test_a_list_of_up_to_eight_items_comes_whole(tree_service):
    answer = tree_service.engine.ask("what are the steps to descale with citric acid?")
    flat = " ".join(answer.text.split())
    for step in ("Dissolve two spoonfuls", "Pour the solution into", "Boil it once", "Wait twenty minutes",
                 "Pour the solution away", "Rinse the kettle twice"):  # fmt: skip
        assert step in flat, (step, answer.text)


def test_a_longer_list_says_how_many_items_it_left_out(tree_service):
    tree_service.composer.budget = 260  # room for a few items only
    try:
        answer = tree_service.engine.ask("which spices keep their flavour for years?")
    finally:
        tree_service.composer.budget = tree_service.settings.answer_budget_chars
    shown = [x for x in ("Whole cloves", "Cinnamon sticks", "Star anise", "Nutmeg", "Dried chillies",
                          "Mustard seeds", "Cumin seeds", "Fenugreek seeds") if x in answer.text]  # fmt: skip
    found = re.search(r"… and (\d+) more in the notes", answer.text)
    assert shown and found, answer.text
    listed = len(re.findall(r"^\s*- (?!\*…)", answer.text.split("closed jar:", 1)[1], flags=re.M))
    assert listed + int(found.group(1)) == 12, answer.text


def test_tell_me_about_x_opens_with_what_x_is(tree_service):
    answer = tree_service.engine.ask("Tell me about the bicycle chain")
    body = [line for line in answer.text.splitlines() if line.strip() and not line.startswith(("From", "**"))]
    assert body[0].lstrip("- ").startswith("A bicycle chain is the loop"), answer.text


def test_a_two_part_question_gets_both_parts(tree_service):
    answer = tree_service.engine.ask("how often should a bike chain be oiled, and what happens when it runs dry?")
    flat = " ".join(answer.text.split())
    assert "every few hundred kilometres" in flat and "wears the cassette faster" in flat, answer.text


def test_no_passage_from_an_unrelated_area(tree_service):
    answer = tree_service.engine.ask("why does a dry bicycle chain squeak?")
    assert answer.sources and all(s.source == "Bicycle.md" for s in answer.sources), [s.source for s in answer.sources]
