"""The service around the library: defaults, warm-up racing a request, the notes watcher."""

from __future__ import annotations

import shutil
import threading
import time

from assistant.core.settings import NOTES_DIR, Settings, env_example
from assistant.service import Service
from ingest.pipeline import parse_tree, run_ingest
from ingest.watch import NotesWatcher
from tests.conftest import PROJECT, make_settings


def test_notes_path_defaults_to_the_notes_folder_and_reads_what_is_added(tmp_path):
    """The default is the repository's notes folder; a note dropped beside its files is read.
    (The drop happens in a copy, so a test stopped half way leaves the repository as it was.)"""
    assert Settings(_env_file=None).notes_path == NOTES_DIR
    folder = tmp_path / "notes"
    shutil.copytree(NOTES_DIR, folder)
    (folder / "zz-test-added-note.md").write_text(
        "- Kites\n    - Fly them on windy days, away from power lines.\n", encoding="utf-8"
    )
    settings = Settings(_env_file=None, notes_path=folder)
    tree = parse_tree(settings.notes_path, settings)
    assert set(tree.digests) == {"000_85ef1cbe2e838ad0.txt", "zz-test-added-note.md"}
    kites = [p for p in tree.passages if p.source == "zz-test-added-note.md"]
    assert kites and kites[0].path == ("zz-test-added-note", "Kites") and "windy days" in kites[0].body


def test_warm_up_racing_requests_builds_one_retriever(bundled_settings, monkeypatch):
    import assistant.service as service_module

    built = []

    class Counting(service_module.SearchPipeline):
        def __init__(self, *args, **kwargs):
            built.append(1)
            time.sleep(0.5)  # widen the window in which a second build could start
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(service_module, "SearchPipeline", Counting)
    service = Service(bundled_settings)
    service.start_warmup()
    results = []
    threads = [threading.Thread(target=lambda: results.append(service.search("what is sharding"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    deadline = time.time() + 120
    while service._warming and time.time() < deadline:
        time.sleep(0.1)
    assert built == [1]
    assert len(results) == 4 and len({tuple(p.id for p in r.passages) for r in results}) == 1


def test_watcher_reingests_a_changed_note_after_a_quiet_second(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    run_ingest(settings)
    reloaded = []
    watcher = NotesWatcher(settings, on_ingested=lambda: reloaded.append(True)).start()
    try:
        time.sleep(0.5)
        (small_tree / "Kites.md").write_text("- Kites\n    - Fly them on windy days.\n", encoding="utf-8")
        deadline = time.time() + 120
        while not watcher.events and time.time() < deadline:
            time.sleep(0.2)
    finally:
        watcher.stop()
    assert watcher.events, "the watcher never re-ingested"
    event = watcher.events[0]
    assert event.error is None and event.report.added >= 1 and reloaded
    assert "re-ingested" in event.message
    assert any(p.source == "Kites.md" for p in Service(settings).index.passages)


def test_a_reingest_by_another_process_is_picked_up(tmp_path, small_tree):
    settings = make_settings(tmp_path / "store", small_tree)
    run_ingest(settings)
    service = Service(settings)
    before = service.search("kites on windy days")
    assert not any("Kites" in p.path for p in before.passages)
    assert service.reload_if_reingested() is False  # nothing changed
    (small_tree / "Kites.md").write_text("- Kites\n    - Fly them on windy days.\n", encoding="utf-8")
    run_ingest(settings)  # as `python -m ingest` would, beside the running app
    old = before.analysis  # the old index still answers meanwhile: it is kept one ingest longer
    assert old is not None and service.search("kites on windy days").passages
    assert service.reload_if_reingested() is True
    assert any("Kites" in p.path for p in service.search("kites on windy days").passages)


def test_first_page_examples_work_and_stay_the_same(service):
    """The first page's examples come from the notes alone (no model: shown at once, the same on
    every run), and each works: the questions are answered from the notes, the needs find a persona."""
    questions, needs = service.example_questions(), service.example_needs()
    assert len(questions) == 4 and len(needs) == 4
    assert questions == Service(service.settings).example_questions()  # stable
    for question in questions:
        answer = service.stream(question).answer
        assert answer.text.startswith("From your notes on"), (question, answer.text[:80])
    offered = 0
    for request, persona in needs:
        result = service.search(request)
        offered += persona.key in [p.key for p in [result.persona, *result.suggestions] if p is not None]
    assert offered >= 3, needs


def test_env_example_is_generated_from_the_described_settings():
    """`.env.example` is what `python -m assistant settings --env-example` writes: every
    setting, each with its description, so the two never drift apart."""
    shipped = (PROJECT / ".env.example").read_text(encoding="utf-8")
    assert shipped == env_example()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"{name.upper()}=" in shipped
