"""A real browser: `streamlit run app.py` on a free loopback port, driven by Debian's
Chromium through Playwright (no browser download). Screenshots are saved in the test's
temporary folder; every step asserts what a person would read on the page."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import PROJECT, free_port, stop, wait_for_port
from tests.support import CHROMIUM, CHROMIUM_FLAGS, streamlit_command

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"),
]


@pytest.fixture()
def server(bundled_settings, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "STORE_DIR": str(bundled_settings.store_dir),
        "NOTES_PATH": str(bundled_settings.notes_path),
        "HISTORY_DB_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}",
        "LLM_PROVIDER": "none",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        streamlit_command(port, str(PROJECT / "app.py")),
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=90, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture()
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        yield page
        browser.close()


# The main area: Streamlit renames its test id (stMain -> stAppScrollToBottomContainer) once
# a chat input is on the page, but its element id stays "stMain".


def shoot(page, path) -> None:
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    print(f"screenshot: {path}")


def send(page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def test_first_page_examples_answers_and_sources(page, tmp_path):
    from playwright.sync_api import expect

    main = page.locator("#stMain")
    expect(main).to_contain_text("persona prompts", timeout=120_000)
    expect(main).to_contain_text("Ask your notes", timeout=120_000)  # examples come once the models load
    expect(main).to_contain_text("LLM_PROVIDER")  # the answer mode, and how to add a model
    expect(page.get_by_text("Deploy")).to_have_count(0)  # minimal toolbar
    shoot(page, tmp_path / "first-page.png")

    example = page.get_by_role("button", name="Tell me about ").first
    asked = example.inner_text()
    example.click()
    answer = page.get_by_test_id("stChatMessage").nth(1)
    expect(answer).to_contain_text("From your notes on", timeout=60_000)
    expect(page.get_by_test_id("stChatMessage").nth(0)).to_contain_text(asked)

    send(page, "what is cache-aside?")
    answer = page.get_by_test_id("stChatMessage").nth(3)
    expect(answer).to_contain_text("From your notes on Cache-aside", timeout=60_000)
    sources = answer.get_by_test_id("stExpander")
    sources.get_by_text("Sources (").click()
    expect(sources).to_contain_text("000_85ef1cbe2e838ad0.txt:", timeout=10_000)
    shoot(page, tmp_path / "answer.png")


def test_persona_library_create_find_by_typo_and_use(page, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#stMain")).to_contain_text("persona prompts", timeout=120_000)
    page.get_by_test_id("stSidebar").get_by_text("Personas", exact=True).click()
    main = page.locator("#stMain")
    expect(main).to_contain_text("Persona library", timeout=30_000)
    filter_box = main.get_by_placeholder("type to filter by name or prompt…")
    filter_box.fill("linux terminal")  # filters as you type, no Enter
    expect(main.get_by_text("personas · ★", exact=False)).not_to_contain_text("158 of 158", timeout=10_000)

    main.get_by_text("Create your own persona").click()
    main.get_by_label("Name").fill("Sourdough Coach")
    main.get_by_label("Emoji").fill("🍞")
    main.get_by_label("Prompt").fill(
        "I want you to act as a sourdough baking coach for a {level} baker. You help "
        "keep a starter alive and fix dense or flat loaves."
    )
    main.get_by_role("button", name="Save persona").click()
    expect(page.get_by_text("Saved “Sourdough Coach”.")).to_be_visible(timeout=30_000)
    shoot(page, tmp_path / "persona-library.png")

    page.get_by_test_id("stSidebar").get_by_test_id("stRadioGroup").get_by_text("Chat", exact=True).click()
    send(page, "act as a sourdoh coch")  # a typo of your own persona's name
    use = page.get_by_role("button", name="Use 🍞 Sourdough Coach in this chat")
    expect(use).to_be_visible(timeout=60_000)
    use.click()
    expect(page.get_by_role("heading", name="🍞 Sourdough Coach")).to_be_visible(timeout=30_000)
    expect(page.locator("#stMain")).to_contain_text("template slots")
    shoot(page, tmp_path / "persona-in-chat.png")


def test_notes_tree_opens_a_rendered_section(page, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#stMain")).to_contain_text("persona prompts", timeout=120_000)
    page.get_by_test_id("stSidebar").get_by_text("Notes", exact=True).click()
    main = page.locator("#stMain")
    main.get_by_role("button", name="▸ System Design").first.click()  # the area
    expect(main.get_by_role("button", name="▾ System Design")).to_have_count(1, timeout=30_000)
    main.get_by_role("button", name="▸ System Design", exact=False).first.click()  # the primer's own top
    expect(main.get_by_role("button", name="▾ System Design", exact=False)).to_have_count(2, timeout=30_000)
    main.get_by_role("button", name="▸ Cache", exact=False).first.click()
    expect(main.get_by_role("heading", name="Cache", exact=True, level=3)).to_be_visible(timeout=30_000)
    expect(main).to_contain_text("Caching improves page load times")
    expect(main).not_to_contain_text(">>>")
    shoot(page, tmp_path / "notes-tree.png")


def upload(area, path) -> None:
    """Choose a file and wait until the uploader shows it: a click before that imports nothing."""
    from playwright.sync_api import expect

    area.locator("input[type=file]").set_input_files(str(path))
    expect(area.get_by_text(path.name, exact=True)).to_be_visible(timeout=30_000)
    # the upload ends in a rerun of the script: a click during it can be lost
    area.page.wait_for_timeout(500)
    expect(area.page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)


def test_import_a_chat_and_personas_from_json_files(page, tmp_path):
    """The two uploaders: a chat export comes in as its own chat, a persona export as your own
    personas; each says so, and a file that is not an export is refused with a message."""
    from playwright.sync_api import expect

    from assistant.chat.store import ChatStore

    source = ChatStore(f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}")
    chat = source.sessions.create("", "Kites chat")
    source.sessions.add_user(chat.id, "when is it too windy for kites?", "")
    (tmp_path / "chat.json").write_text(source.transfer.export_json(chat.id, ""), encoding="utf-8")
    source.personas.save("", name="Kite Coach", prompt="I want you to act as a kite flying coach.")
    (tmp_path / "personas.json").write_text(source.transfer.export_personas(""), encoding="utf-8")
    (tmp_path / "not-an-export.json").write_text('{"hello": 1}', encoding="utf-8")

    expect(page.locator("#stMain")).to_contain_text("persona prompts", timeout=120_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Rename, delete, export, import").click()
    upload(sidebar, tmp_path / "not-an-export.json")
    sidebar.get_by_role("button", name="Import", exact=True).click()
    expect(sidebar.get_by_test_id("stAlert")).to_be_visible(timeout=30_000)  # refused, said why
    upload(sidebar, tmp_path / "chat.json")
    sidebar.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#stMain")).to_contain_text("when is it too windy for kites?", timeout=30_000)
    expect(page.locator("#stMain")).to_contain_text("Kites chat")  # the imported chat is the one shown
    shoot(page, tmp_path / "chat-imported.png")

    sidebar.get_by_test_id("stRadioGroup").get_by_text("Personas", exact=True).click()
    main = page.locator("#stMain")
    expect(main).to_contain_text("Persona library", timeout=30_000)
    main.get_by_text("Export or import your personas").click()
    upload(main, tmp_path / "personas.json")
    main.get_by_role("button", name="Import personas").click()
    expect(main.get_by_test_id("stDataFrame")).to_be_visible(timeout=30_000)
    expect(main.get_by_text("of 159 personas", exact=False)).to_be_visible(timeout=30_000)  # 158 + yours
    shoot(page, tmp_path / "personas-imported.png")
