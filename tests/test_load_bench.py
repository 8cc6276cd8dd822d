"""The load benchmark, smoke-tested at one session with one question: it starts the server,
drives a session through the agent API, checks the history, and reports one JSON object.
No browser and no re-ingest; the store is the session's bundled store, copied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from tests.conftest import PROJECT


def test_load_bench_at_one_session(bundled_settings):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "LOAD_STORE": str(bundled_settings.store_dir),
        "LOAD_LEVELS": "1",
        "LOAD_QUESTIONS": "1",
        "LOAD_BROWSER": "0",
        "LOAD_REINGEST": "0",
    }
    proc = subprocess.run(
        [sys.executable, str(PROJECT / "bench" / "load_bench.py")],
        cwd=PROJECT / "bench",
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["benchmark"] == "load"
    assert data["browser"] == {"skipped": "LOAD_BROWSER=0"}
    [level] = data["levels"]
    assert level["sessions"] == 1 and level["answers"] == 1, level
    assert level["errors"] == 0, level.get("error_details")
    assert level["lost_messages"] == level["duplicated_messages"] == level["misplaced_messages"] == 0, level
    assert level["p95_ms"] > 0 and level["answers_per_s"] > 0
    assert level["server_cpu_s_per_answer"] is None or level["server_cpu_s_per_answer"] > 0
    assert data["targets"]["lost_duplicated_misplaced"]["met"] is True
    assert data["targets"]["p95_8_vs_1"]["met"] is None  # not measured at one level
    assert data["met"] is False  # every target must be measured to be met


def test_the_history_check_tells_lost_duplicated_and_misplaced_messages(tmp_path):
    sys.path.insert(0, str(PROJECT / "bench"))
    from load_bench import History

    from assistant.chat.store import ChatStore

    store = ChatStore(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    history = History(store)
    chats = {name: store.sessions.create("").id for name in ("right", "wrong", "lost", "twice")}
    asked = {"right": ["q1", "q2"], "wrong": ["q3"], "lost": ["q4"], "twice": ["q5"]}
    for name, questions in asked.items():
        history.expect(chats[name], questions)

    def turn(chat: str, question: str) -> None:
        store.sessions.add_user(chat, question, "")
        store.sessions.add_assistant(chat, f"about {question}", "", {"question": question})

    turn(chats["right"], "q1")
    turn(chats["right"], "q2")
    turn(chats["wrong"], "q3")
    turn(chats["wrong"], "q1")  # another chat's question and its answer
    turn(chats["twice"], "q5")
    turn(chats["twice"], "q5")
    turn(store.sessions.create("").id, "q6")  # a chat nobody asked in
    counts, problems = history.check()
    assert counts["lost"] == 2  # q4 and its answer
    assert counts["duplicated"] == 2  # q5 and its answer, once more
    assert counts["misplaced"] == 2 + 2  # q1 and its answer in "wrong", and the stray chat
    assert len(problems) == 4
    assert history.check() == (Counter(), [])  # a level is charged only with what got worse
