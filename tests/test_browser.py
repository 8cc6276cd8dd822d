"""A real browser: `streamlit run app.py` on a free loopback port, driven by Debian's
Chromium through Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PROJECT, free_port, stop, wait_for_port

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture()
def server(bundled_settings, tmp_path):
    port = free_port()
    env = {**os.environ, "STORE_DIR": str(bundled_settings.store_dir), "NOTES_PATH": str(bundled_settings.notes_path),
           "HISTORY_DB_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}", "LLM_PROVIDER": "none",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(PROJECT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=90, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_ask_and_pick_a_persona_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        box = page.get_by_test_id("stChatInputTextArea")
        expect(box).to_be_visible(timeout=120_000)
        box.fill("what is cache-aside?")
        box.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        expect(answer).to_contain_text("From your notes", timeout=60_000)
        expect(answer).to_contain_text("Cache-aside")
        sources = answer.get_by_test_id("stExpander")
        expect(sources).to_contain_text("Sources (")
        sources.get_by_text("Sources (").click()
        expect(sources).to_contain_text("000_85ef1cbe2e838ad0.txt:989-")
        page.screenshot(path=str(tmp_path / "answer.png"), full_page=True, animations="disabled")

        box = page.get_by_test_id("stChatInputTextArea")
        box.fill("act as a linux terminal")
        box.press("Enter")
        use = page.get_by_role("button", name="Use 🐧 Linux Terminal in this chat")
        expect(use).to_be_visible(timeout=60_000)
        use.click()
        drop = page.get_by_role("button", name="Drop persona")
        expect(drop).to_be_visible(timeout=30_000)
        expect(use).to_have_count(0, timeout=30_000)  # the session now uses the persona
        expect(page.get_by_role("heading", name="🐧 Linux Terminal")).to_be_visible()
        drop.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "persona.png"), full_page=True, animations="disabled")
        browser.close()
    assert (tmp_path / "answer.png").stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")
