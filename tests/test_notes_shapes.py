"""Notes of any shape and a note of your own: Markdown vaults with headings, callouts, front
matter and [[wikilinks]], Logseq outlines with properties, a file of five bullets, and a short
new note beside the bundled export, which must rank first for its own topic."""

from __future__ import annotations

import shutil

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from assistant.core.settings import BUNDLED_NOTES
from assistant.service import Service
from ingest.pipeline import parse_tree, run_ingest
from tests.conftest import make_settings

BLOOM = """# Bloom filters

- A Bloom filter is a compact probabilistic set: it answers "possibly present" or "definitely absent".
- It can give false positives but never false negatives.
- Items cannot be removed from a plain Bloom filter; a counting Bloom filter allows deletes.
- Sizing: about 10 bits per item keep false positives near 1%.
"""

VAULT = {
    "Gardening/Tomatoes.md": """---
title: Growing tomatoes
aliases: [tomato plants]
tags: garden
---
# Growing tomatoes

> [!tip] Water at the base
> Wet leaves invite blight, so water the soil, not the plant.

## Pruning
Pinch off the suckers that grow between the main stem and a branch. Keep two or three main stems
for indeterminate varieties.

## Feeding
1. Mix compost into the bed before planting.
2. Feed with a potassium-rich fertiliser once the first fruits set.

See [[Composting|my compost notes]] for the mix.
""",
    "Composting.md": """- Composting
    - Layer greens and browns about one to three by volume.
    - Turn the heap every two weeks so it stays aerobic.
""",
    "five bullets.txt": "- kettle descaling: citric acid, one tablespoon per litre\n- bike chain: oil every 300 km\n"
    "- smoke alarm: test monthly\n- passport: renew 9 months before expiry\n- car tyres: 2.3 bar front\n",
    "logseq/Flashcards in practice.md": "type:: [[Feature]]\nalias:: Spaced cards\n\n- ## Usage\n"
    "\t- Add the #card tag to a block to make it a card.\n\t\t- type:: [[Command]]\n\t\t  name:: Card\n"
    "\t- Review cards daily in the review panel.\n",
}


@pytest.fixture(scope="module")
def vault_service(tmp_path_factory) -> Service:
    root = tmp_path_factory.mktemp("vault")
    for rel, text in VAULT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path_factory.mktemp("vault-store"), root)
    run_ingest(settings)
    return Service(settings)


def test_every_shape_becomes_sections_with_breadcrumbs(vault_service):
    crumbs = {p.breadcrumb for p in vault_service.index.passages}
    pruning = next(p for p in vault_service.index.passages if "suckers" in p.text)
    assert pruning.path[:2] == ("Gardening", "Growing tomatoes"), pruning.path  # page name from the front matter
    assert any(c.startswith("Composting > Composting") for c in crumbs)
    assert any(c.startswith("five bullets") for c in crumbs)
    assert any(c == "logseq > Flashcards in practice > Usage" for c in crumbs)
    texts = "\n".join(p.text for p in vault_service.index.passages)
    assert "type::" not in texts and "name:: Card" not in texts and "aliases:" not in texts  # metadata, not text
    assert "[[" not in texts and "my compost notes" in texts  # wikilinks as their text
    assert "[!tip]" not in texts and "> Water at the base" in texts  # a callout as a quote
    tomato = next(p for p in vault_service.index.passages if p.source == "Gardening/Tomatoes.md")
    assert "tomato plants" in tomato.aliases


def test_answers_from_prose_and_numbered_steps(vault_service):
    answer = vault_service.stream("when should I feed my tomato plants?").answer
    assert answer.mode == "extractive" and "potassium-rich" in answer.text
    pruning = vault_service.stream("what do I pinch off tomato plants?").answer
    assert "suckers" in pruning.text
    short = vault_service.stream("what pressure for the car tyres?").answer
    assert "2.3 bar" in short.text


def test_a_heading_is_shown_at_the_answers_level(vault_service):
    answer = vault_service.stream("what does an alias of flashcards do, how do I make a card?").answer
    assert not any(line.startswith("#") for line in answer.text.split("\n"))


def test_a_question_in_another_language_reaches_the_note(vault_service):
    answer = vault_service.stream("¿Cada cuánto hay que voltear el compost?").answer
    assert answer.mode == "extractive" and "every two weeks" in answer.text


@pytest.fixture(scope="module")
def with_bloom(bundled_settings, tmp_path_factory) -> Service:
    """The bundled notes and a short note of one's own, in a temporary notes folder; the store
    starts as a copy of the bundled one, so only the new note is embedded."""
    notes = tmp_path_factory.mktemp("notes-plus")
    shutil.copy(BUNDLED_NOTES, notes / BUNDLED_NOTES.name)
    (notes / "Bloom filters.md").write_text(BLOOM, encoding="utf-8")
    store = tmp_path_factory.mktemp("store-plus") / "store"
    shutil.copytree(bundled_settings.store_dir, store)
    settings = make_settings(store, notes)
    report = run_ingest(settings)
    assert report.added >= 1 and report.unchanged >= 700
    return Service(settings)


def test_a_short_new_note_ranks_first_for_its_own_topic(with_bloom, service):
    question = "What is a Bloom filter and can it give false negatives?"
    before = service.stream(question).answer
    assert before.mode == "none"  # the bundled notes hold no answer: none means these notes
    result = with_bloom.search(question)
    assert result.route == "notes" and result.passages[0].source == "Bloom filters.md"
    answer = with_bloom.stream(question).answer
    assert answer.sources[0].source == "Bloom filters.md" and "never false negatives" in answer.text
    assert not any(line.startswith("# ") for line in answer.text.split("\n"))  # its heading is not an H1


def test_a_follow_up_keeps_to_its_topic(with_bloom):
    history = [HumanMessage("What is a Bloom filter?"), AIMessage("A Bloom filter is a compact probabilistic set…")]
    answer = with_bloom.stream("and can I delete items from it?", history=history).answer
    assert answer.sources and answer.sources[0].source == "Bloom filters.md", [s.breadcrumb for s in answer.sources]
    assert "counting Bloom filter" in answer.text
    # in another language too: no English word tells it refers back
    again = with_bloom.stream("¿y puedo borrar elementos?", history=history).answer
    assert again.sources and again.sources[0].source == "Bloom filters.md"


def test_links_to_files_outside_the_notes_are_skipped_unless_followed(tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "diary.md").write_text("- Secret\n    - Do not index me.\n", encoding="utf-8")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ok.md").write_text("- Fine\n    - Index me.\n", encoding="utf-8")
    (notes / "diary.md").symlink_to(outside / "diary.md")
    (notes / "folder").symlink_to(outside, target_is_directory=True)
    settings = make_settings(tmp_path / "store", notes)
    tree = parse_tree(notes, settings)
    assert set(tree.digests) == {"ok.md"}
    assert {p.file for p in tree.problems} == {"diary.md", "folder"}
    assert all("outside the notes folder" in p.message for p in tree.problems)
    followed = make_settings(tmp_path / "store2", notes, follow_symlinks=True)
    assert set(parse_tree(notes, followed).digests) == {"ok.md", "diary.md", "folder/diary.md"}
