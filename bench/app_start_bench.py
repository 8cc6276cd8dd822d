"""First page ready after start: `streamlit run` until the chat box shows in Chromium, for
the app and, in the same run, for a hello-world app as the baseline; then the app's first
answer (the model loads in the background meanwhile).

Measured on the bundled, already ingested notes (a warm machine). Target: within 10 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PROJECT, emit

from tests.support import CHROMIUM_FLAGS, free_port, streamlit_command


def time_app(browser, script: str, env: dict, question: str | None = None) -> tuple[float, float | None]:
    """Seconds from `streamlit run` to a visible chat box, and to the first answer if asked."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        streamlit_command(port, script),
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = browser.new_page()
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}", timeout=2000)
                break
            except Exception:
                time.sleep(0.1)
        box = page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=120_000)
        ready = time.perf_counter() - start
        answered = None
        if question:
            box.fill(question)
            box.press("Enter")
            page.get_by_text("From your notes").wait_for(timeout=120_000)
            answered = time.perf_counter() - start
        page.close()
        return ready, answered
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        emit({"benchmark": "app_start", "skipped": "chromium not installed"})
        return
    store = os.environ.get("BENCH_STORE") or tempfile.mkdtemp(prefix="bench-store-")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "STORE_DIR": store,
        "LLM_PROVIDER": "none",
        "HISTORY_DB_URL": f"sqlite:///{Path(tempfile.mkdtemp()) / 'h.sqlite3'}",
    }
    subprocess.run([sys.executable, "-m", "ingest", "--json"], cwd=PROJECT, env=env, check=True, capture_output=True)
    hello = Path(tempfile.mkdtemp()) / "hello.py"
    hello.write_text("import streamlit as st\nst.title('hello')\nst.chat_input('say something')\n")
    ours, baseline = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        for _ in range(int(os.environ.get("BENCH_ROUNDS", "2"))):
            baseline.append(time_app(browser, str(hello), env)[0])
            ours.append(time_app(browser, "app.py", env, "what is cache-aside?"))
        browser.close()
    ready = [r for r, _ in ours]
    answered = [a for _, a in ours]
    emit(
        {
            "benchmark": "app_start",
            "first_page_ready_s": [round(s, 2) for s in ready],
            "first_answer_after_start_s": [round(s, 2) for s in answered],
            "hello_world_app_ready_s": [round(s, 2) for s in baseline],
            "best_ready_s": round(min(ready), 2),
            "best_first_answer_s": round(min(answered), 2),
            "target_s": 10.0,
            "met": min(ready) <= 10.0,
        }
    )


if __name__ == "__main__":
    main()
