"""Scale-out (issue 19, point 6): two app processes, one Chroma server, one PostgreSQL.

Everything is real: `chroma run` on a loopback port holds the vectors, a throwaway
PostgreSQL 15 cluster holds the chat history, and two `streamlit run app.py` processes on two
ports serve the same configuration, with sign-in against one OpenID provider
(oidc-provider-mock). Both processes and the ingest share one STORE_DIR: in server mode the
vectors are in the Chroma server, while `manifest.json` (which collection is current) and the
persona catalog (`personas-<collection>.json`) are files in STORE_DIR, and the notes model's
ONNX export is in MODEL_CACHE_DIR (by default the user's cache, shared by every process).

- A chat written through app A is read through app B by the same user, signed in on each.
- A re-ingest of a changed notes folder into the Chroma server is seen by both: each
  answers from the new note without a restart.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

from assistant.chat.store import ChatStore
from tests.oidc import FIRST_PAGE_MS, SIGNED_IN_BROWSER_MARKS, oidc_provider, send, shoot, sign_in, write_secrets
from tests.postgres import postgres_database, postgres_url  # noqa: F401 - fixtures
from tests.support import CHROMIUM, CHROMIUM_FLAGS, PROJECT, free_port, stop, streamlit_command, wait_for_port

pytestmark = SIGNED_IN_BROWSER_MARKS

USER = "carol@example.com"
ANSWER_MS = 60_000

DATABASES = (
    "- Sharding\n"
    "    - Sharding distributes data across different databases.\n"
    "    - Joining data from multiple shards is more complex.\n"
    "- Replication\n"
    "    - Replication copies data to several servers so reads scale and a failure loses nothing.\n"
)
KITES = (
    "- Kite flying\n    - Fly a kite in steady wind between 10 and 25 km/h.\n    - Never fly a kite near power lines.\n"
)
BEES = "how often should I inspect the beehive?"
BEEKEEPING = (
    "- Beekeeping\n"
    "    - Inspect the hive every seven days in spring.\n"
    "    - A smoker calms the bees before the lid is opened.\n"
)


class Clock:
    """Seconds since the start, per step: printed, so a slow step shows in the output."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        print(f"{now - self.start:6.1f} s  (+{now - self.last:5.1f})  {step}")
        self.last = now


def ask(page, question: str, topic: str) -> None:
    """Send a question; wait until its answer is drawn from the store with its sources (the
    rerun after the answer is done) and says which note it is from."""
    from playwright.sync_api import expect

    send(page, question)
    messages = page.get_by_test_id("stChatMessage")
    expect(messages.filter(has_text=question)).to_have_count(1, timeout=ANSWER_MS)
    answer = messages.last  # the question's own answer: nothing else is written meanwhile
    expect(answer).to_contain_text("From your notes on", timeout=ANSWER_MS)
    expect(answer.get_by_text("Sources (")).to_be_visible(timeout=ANSWER_MS)  # drawn again, from the history
    expect(answer, f"the answer to “{question}” is not from the note on {topic}").to_contain_text(
        f"From your notes on {topic}"
    )
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_editable(timeout=ANSWER_MS)


def spawn_app(port: int, env: dict[str, str], secrets_file: Path, log: Path) -> subprocess.Popen:
    """`streamlit run app.py` with sign-in against the provider, not waited for."""
    with open(log, "wb") as out:  # the child keeps its own copy
        return subprocess.Popen(
            streamlit_command(port, str(PROJECT / "app.py"), "--secrets.files", str(secrets_file)),
            cwd=PROJECT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def new_page(browser):
    """A browser context of its own: its own cookies, as a second device of the same person."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    return context.new_page()


def test_two_apps_share_chats_and_see_a_reingest(chroma_server, postgres_database, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    from ingest.pipeline import run_ingest
    from tests.conftest import make_settings

    clock = Clock()
    tag = secrets.token_hex(3)
    notes, store = tmp_path / "notes", tmp_path / "store"
    notes.mkdir()
    (notes / "Databases.md").write_text(DATABASES, encoding="utf-8")
    (notes / "Kites.md").write_text(KITES, encoding="utf-8")
    settings = make_settings(store, notes, chroma_host="127.0.0.1", chroma_port=chroma_server)
    first = run_ingest(settings)
    assert first.chunks == 3
    clock(f"ingested into the Chroma server on port {chroma_server}: {first.collection}")

    env = {
        "STORE_DIR": str(store),
        "NOTES_PATH": str(notes),
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(chroma_server),
        "HISTORY_DB_URL": postgres_database,
        "LLM_PROVIDER": "none",
        "HF_HUB_OFFLINE": "1",
        "WATCH_NOTES": "false",
    }
    procs: list[subprocess.Popen] = []
    with oidc_provider() as issuer, sync_playwright() as pw:
        try:
            ports = [free_port(), free_port()]
            for name, port in zip("ab", ports):  # both start at once; each is waited for below
                secrets_file = write_secrets(tmp_path / name / "secrets.toml", port, issuer)
                procs.append(spawn_app(port, env, secrets_file, tmp_path / name / "streamlit.log"))
            for port, proc in zip(ports, procs):
                wait_for_port(port, timeout=90, proc=proc)
            app_a, app_b = (f"http://127.0.0.1:{port}" for port in ports)
            clock(f"app A on {app_a}, app B on {app_b}")
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)

            # The same person signs in on A and on B, each in a browser context of its own (as
            # from two devices). A's first page makes their first, empty chat; B lists it too.
            a, b = new_page(browser), new_page(browser)
            sign_in(a, app_a, issuer, USER)
            sign_in(b, app_b, issuer, USER)
            clock("signed in on A and on B")

            # A chat written through A ...
            question_a = f"what is sharding? (via A {tag})"
            ask(a, question_a, "Sharding")
            chat_name = a.get_by_role("main").get_by_role("heading").first.inner_text()
            clock(f"asked on A, chat “{chat_name}”")

            # ... is read through B: a fresh page of B lists it under its new name, and shows it.
            b.reload()
            sidebar = b.get_by_test_id("stSidebar")
            expect(sidebar.get_by_role("combobox", name="Chat")).to_have_value(chat_name, timeout=FIRST_PAGE_MS)
            sidebar.get_by_test_id("stSelectbox").click()
            expect(b.get_by_role("option")).to_have_count(1)  # A's chat is this person's only one
            b.get_by_role("option", name=chat_name).click()
            messages_b = b.get_by_test_id("stChatMessage")
            expect(messages_b.filter(has_text=question_a)).to_have_count(1, timeout=FIRST_PAGE_MS)
            expect(messages_b).to_have_count(2)
            expect(messages_b.nth(1)).to_contain_text("From your notes on Sharding")
            expect(messages_b.nth(1)).to_contain_text("Sharding distributes data across different databases.")
            clock("read A's chat on B")
            shoot(b, tmp_path / "b-reads-a.png")

            # B answers from the index as it is: there is no note about bees yet.
            question_before = f"{BEES} (via B {tag})"
            ask(b, question_before, "")
            expect(messages_b.last).not_to_contain_text("Beekeeping")
            clock("asked on B before the re-ingest")

            # A re-ingest of a new note into the Chroma server, by another process than both apps.
            (notes / "Beekeeping.md").write_text(BEEKEEPING, encoding="utf-8")
            second = run_ingest(settings)
            assert second.collection != first.collection and second.added == 1
            clock(f"re-ingested: {second.collection}")

            # Both answer from the new note, in the pages they already have open.
            after = {who: f"{BEES} (via {who} after the re-ingest {tag})" for who in "AB"}
            for page, who in ((a, "A"), (b, "B")):
                ask(page, after[who], "Beekeeping")
                expect(page.get_by_test_id("stChatMessage").last).to_contain_text(
                    "Inspect the hive every seven days in spring."
                )
                clock(f"{who} answered from the new note")
            shoot(a, tmp_path / "a-after-reingest.png")
            shoot(b, tmp_path / "b-after-reingest.png")
            browser.close()
        finally:
            for proc in procs:
                proc.terminate()  # both at once; `stop` then waits for each
            for proc in procs:
                stop(proc)

    # One chat in PostgreSQL, written by both processes, in the order the questions were asked.
    store_db = ChatStore(postgres_database)
    (session,) = store_db.sessions.list(USER)
    questions = [str(m.content) for m in store_db.sessions.messages(session.id, USER).messages if m.type == "human"]
    assert questions == [
        question_a,
        question_before,
        after["A"],
        after["B"],
    ]
    assert store_db.sessions.count_messages(session.id) == 8
    # Server mode: the vectors are in the Chroma server; STORE_DIR holds the manifest and catalog.
    assert not (store / "chroma").exists()
    assert {p.name for p in Path(store).glob("*.json")} >= {"manifest.json", f"personas-{second.collection}.json"}
    clock("checked the history database and STORE_DIR")
