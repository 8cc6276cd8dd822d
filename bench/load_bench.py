"""Load that measures the server: 1, 4, 8 and 16 people asking at once, on ONE `streamlit run`
of the app, with the server's own CPU time per answer.

How the sessions are driven, and why. Each simulated person is a real Streamlit session of the
real server process, driven without a browser through Streamlit's agent API
(`--server.enableAgentApi`, `POST /_stcore/agent/interact`): the server makes an ordinary
AppSession for it, and every request goes through the browser's own rerun path. A question
is the chat box's trigger, sent as the browser sends it: scoped to the conversation fragment
(`ui/chat_page.py`), so the server does what it does for a browser, the fragment run, the
answer, the app's own `st.rerun`, all of it. The request returns once that run chain has
settled, with the page as a tree (a snapshot), in which the answer must be drawn. Its wall
time is one latency sample. Everything the people do costs the server what it costs with
browsers, and the clients are plain HTTP requests from threads of this process: their CPU is
small and it is measured apart (`client_cpu_s`). The server's CPU is read from
/proc/<pid>/stat of the server process alone, so answers per CPU second are the server's.

Rejected: N `streamlit.testing.v1.AppTest` sessions in threads. They do share one Service
(`st.cache_resource` is per process: checked, one Service for eight AppTests), but AppTest
reruns the whole script for every widget, never the fragment alone, and this app then fails
on a second question: `st.rerun(scope="fragment")` (ui/chat_page.py) raises
StreamlitInvalidLayoutContextError outside a fragment run. Each AppTest run also swaps the
process-wide `Runtime._instance` and patches `config.get_option` with unittest.mock, neither
made for threads, and the harness's own work (a mock runtime and an element tree per run)
would count as server CPU. Rejected too: eight Chromium pages on the same two cores as the
server (the previous version of this file), which measured the browsers as much as the server.
Speaking Streamlit's websocket protocol directly would match a browser's messages byte for
byte, but that protocol is internal; the agent API is the supported way in, on the same path.
What the agent path adds on the server: each request's snapshot is built as JSON (in a worker
thread) and its elements describe themselves; a browser session does neither.

Beside them, ONE real browser (Debian's Chromium through Playwright, never a downloaded
browser) on the same server, in a chat of its own, asks one question per level while the level
runs (at the 1-session level: right after it, so that level stays one person at a time, and
the two latencies compare the agent path with a browser's on an otherwise idle server); its
latency is reported apart, its answer counts in the level's CPU per answer (LOAD_BROWSER=0, or
no chromium: reported as skipped, with the reason).

Each session gets a chat of its own: the chat is created in the history (ChatStore) and the
session picks it in the sidebar's chat picker, as a person would (sign-in is off, so every
session is the same local user and sees every chat). It then asks LOAD_QUESTIONS (3) different
questions in a row, each as soon as the previous answer is drawn; no session asks what another
asks, so a message in the wrong chat is recognised. After each level the history database is
read: every chat must hold exactly its questions, in order, and an answer to each (lost,
duplicated, misplaced: a question or answer in another chat; a stored answer names its
question). Every question has an answer in the bundled notes, so `answers_nothing_relevant`
("Nothing relevant in your notes") counts answers from an index that is not well. After the levels (LOAD_REINGEST=0
to skip), min(8, largest level) sessions ask again while `python -m ingest` runs in another
process on the same store after a note changed; each session's last question waits for its end.
Then a question about the new note, from one of those sessions (its reruns since the ingest
were fragment runs) and from a new session (a full run first): `new_note` says which found it.

From a fresh clone and a fresh store: the bundled notes are copied and ingested into a
temporary store (LOAD_STORE: copy that store instead), the history is a fresh SQLite file, no
language model (LLM_PROVIDER=none: extractive answers), no sign-in, loopback only, every wait
bounded. LOAD_LEVELS=1,4,8,16 and LOAD_QUESTIONS=3 shrink it; LOAD_KEEP=1 keeps the temporary
folder with the server's log. One JSON object on stdout.

Targets: 8 sessions' p95 <= 6 x the 1-session p95; answers per second at 8 >= at 1; 16 sessions
without errors; no lost, duplicated or misplaced message at any level.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from common import PROJECT, emit, summary

from tests.support import CHROMIUM, CHROMIUM_FLAGS, free_port, stop, streamlit_command, wait_for_port

LEVELS = tuple(int(x) for x in os.environ.get("LOAD_LEVELS", "1,4,8,16").split(",") if x.strip())
PER_SESSION = int(os.environ.get("LOAD_QUESTIONS", "3"))
USE_BROWSER = os.environ.get("LOAD_BROWSER", "1") != "0"
USE_REINGEST = os.environ.get("LOAD_REINGEST", "1") != "0"
REINGEST_SESSIONS = min(8, max(LEVELS))
ANSWER_S = 120  # the server's agentWaitTimeout: one answer, however loaded the server
HTTP_S = ANSWER_S + 30
PAGE_MS = 150_000
REINGEST_S = 300
P95_RATIO_MAX = 6.0

# 48 different questions: session s of a level asks QUESTIONS[s * PER_SESSION : (s + 1) * PER_SESSION].
QUESTIONS = [
    "what is cache-aside?",
    "how does database sharding work?",
    "what is a CDN?",
    "what is write-through caching?",
    "what is federation in databases?",
    "what is a load balancer?",
    "what is write-behind caching?",
    "what is denormalization?",
    "what is a reverse proxy?",
    "what is refresh-ahead?",
    "what is master-slave replication?",
    "layer 4 vs layer 7 load balancing",
    "what is the CAP theorem?",
    "what is master-master replication?",
    "push CDNs vs pull CDNs",
    "what is eventual consistency?",
    "what is a message queue?",
    "what is back pressure?",
    "what is weak consistency?",
    "what is a task queue?",
    "what is a key-value store?",
    "what is strong consistency?",
    "what is a document store?",
    "what is a wide column store?",
    "performance vs scalability",
    "latency vs throughput",
    "what is active-passive fail-over?",
    "what is active-active fail-over?",
    "how does DNS work?",
    "what is a graph database?",
    "SQL or NoSQL?",
    "how do I tune SQL queries?",
    "what does ACID mean?",
    "what is BASE in NoSQL?",
    "what are microservices?",
    "what is service discovery?",
    "what is the application layer?",
    "what are the disadvantages of horizontal scaling?",
    "what is asynchronism?",
    "what is HTTP?",
    "what is TCP?",
    "what is UDP?",
    "what is RPC?",
    "what is REST?",
    "what is client caching?",
    "what is database caching?",
    "what are the disadvantages of a load balancer?",
    "what are the disadvantages of sharding?",
]
BROWSER_QUESTIONS = [
    "what is availability in numbers?",
    "what is a CP system?",
    "what is an AP system?",
    "what is web server caching?",
    "what is caching at the object level?",
    "what are the disadvantages of a reverse proxy?",
]
WARMUP_QUESTION = "what is horizontal scaling?"
CANARY_QUESTION = "what is the load benchmark canary word?"
# Every question above has an answer in the bundled notes: this reply means the index is unwell.
NOTHING = "Nothing relevant in your notes"


def questions_of(session: int, offset: int = 0) -> list[str]:
    start = offset + session * PER_SESSION
    return [QUESTIONS[(start + j) % len(QUESTIONS)] for j in range(PER_SESSION)]


def short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


# ----------------------------------------------------------------------------- the server
def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process (Linux /proc), its threads included."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float | None:
    """CPU seconds every core of the machine spent busy (Linux /proc/stat), all processes."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return None
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None
    return round(kb / 1024, 1)


def wait_healthy(base: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with OPENER.open(f"{base}/_stcore/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            raise TimeoutError(f"{base} not healthy after {timeout} s")
        time.sleep(0.2)


# ----------------------------------------------------------------------------- an agent session
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


class AgentError(RuntimeError):
    pass


class Session:
    """One person: a real Streamlit session of the server, driven through the agent API."""

    def __init__(self, base: str, chat: str, asked: list[str]):
        self.url = f"{base}/_stcore/agent/interact"
        self.chat = chat
        self.asked = asked  # what it asked, in order (the history must hold exactly this)
        self.handle: str | None = None
        self.snapshot: dict = {}
        self.answers: list[dict] = []
        self.errors: list[str] = []
        self.bytes = 0

    def interact(self, **body) -> dict:
        if self.handle:
            body["session_id"] = self.handle
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with OPENER.open(request, timeout=HTTP_S) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        self.bytes = len(raw)
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {}
        if status != 200:
            err = doc.get("error") or {}
            raise AgentError(f"HTTP {status} {err.get('code', '')}: {str(err.get('message', raw[:200]))[:300]}")
        self.handle = doc["session_id"]
        self.snapshot = doc
        return doc

    def open(self) -> None:
        """The app's first page, then this session's own chat picked in the sidebar."""
        snap = self.interact()
        if shown_chat(snap) != self.chat:
            snap = self.interact(widget_state={"session_select": chat_label(snap, self.chat)})
        if shown_chat(snap) != self.chat:
            raise AgentError(f"could not open chat {self.chat}: the page shows {shown_chat(snap)}")

    def ask(self, question: str) -> dict:
        """Ask; one sample (ms) if the answer is drawn in this session's own chat."""
        self.asked.append(question)
        k = len(self.asked)
        start = time.perf_counter()
        try:
            snap = self.interact(trigger={"key": chat_box(self.snapshot), "value": question})
        except Exception as exc:  # a refusal, a timeout: counted, and this session stops
            self.answers.append({"error": short(exc)})
            raise
        ms = (time.perf_counter() - start) * 1000
        problem = answer_problem(snap, question, k, self.chat)
        answer = {"ms": ms, "start": start, "end": start + ms / 1000, "bytes": self.bytes}
        if last_answer(snap).startswith(NOTHING):
            answer["nothing"] = True
        self.answers.append({**answer, "error": problem} if problem else answer)
        if problem:
            self.errors.append(f"answer {k}: {problem}")
        return snap


def nodes(node: dict, kind: str) -> list[dict]:
    found = [node] if node.get("type") == kind else []
    for child in node.get("children") or []:
        found += nodes(child, kind)
    return found


def texts(node: dict) -> list[str]:
    body = (node.get("props") or {}).get("body")
    found = [body] if isinstance(body, str) else []
    for child in node.get("children") or []:
        found += texts(child)
    return found


def chat_box(snap: dict) -> str:
    keys = [a["key"] for a in snap.get("actions", []) if a.get("type") == "chat_input"]
    if not keys:
        raise AgentError("no chat box on the page")
    return keys[0]


def shown_chat(snap: dict) -> str | None:
    """The chat the page shows: the sidebar's "Rename to" box is keyed rename-<chat id>-<name>."""
    for action in snap.get("actions", []):
        found = re.match(r"rename-([0-9a-f]{32})(?:-|$)", action.get("key", ""))
        if found:
            return found.group(1)
    return None


def chat_label(snap: dict, chat: str) -> str:
    """The chat picker's label of `chat` (same-named chats carry the start of their id)."""
    picker = next((n for n in nodes(snap["tree"], "selectbox") if n.get("key") == "session_select"), None)
    options = (picker or {}).get("props", {}).get("options", [])
    mine = [o for o in options if o.endswith(f"· {chat[:6]}")]
    if mine:
        return mine[0]
    if options.count("New chat") == 1:  # the only chat so named (ours is unnamed): ours
        return "New chat"
    raise AgentError(f"chat {chat} is not in the chat picker ({len(options)} options)")


def answer_problem(snap: dict, question: str, k: int, chat: str) -> str | None:
    """What is wrong with the page after question k, or None: the k-th answer drawn, in this chat."""
    if snap.get("status") != "ready":
        crash = [m for e in nodes(snap["tree"], "exception") for m in [(e.get("props") or {}).get("message", "")]]
        return f"status {snap.get('status')}: {crash[:1]}"
    if shown_chat(snap) != chat:
        return f"the page shows chat {shown_chat(snap)}"
    messages = [(m.get("props") or {}).get("name") for m in nodes(snap["tree"], "chat_message")]
    users, bots = messages.count("user"), messages.count("assistant")
    if users != k or bots != k:
        return f"{users} questions and {bots} answers drawn after question {k}"
    last_user = [m for m in nodes(snap["tree"], "chat_message") if (m.get("props") or {}).get("name") == "user"][-1]
    if question not in texts(last_user):
        return f"the last question drawn is {texts(last_user)[:1]}"
    last = [m for m in nodes(snap["tree"], "chat_message") if (m.get("props") or {}).get("name") == "assistant"][-1]
    answer = " ".join(texts(last)).strip()
    if not answer or "Something went wrong" in answer:
        return f"answer: {answer[:200]!r}"
    return None


def last_answer(snap: dict) -> str:
    bots = [m for m in nodes(snap["tree"], "chat_message") if (m.get("props") or {}).get("name") == "assistant"]
    return " ".join(texts(bots[-1])) if bots else ""


# ----------------------------------------------------------------------------- the browser
# The page as a person would judge it. `session` is the chat the page shows: its id is in the
# class of the sidebar's "Rename to" box (key "rename-<chat id>").
SNAPSHOT_JS = r"""
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const msgs = [...document.querySelectorAll('[data-testid="stChatMessage"]')];
  const bots = msgs.filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
  const users = msgs.filter(m => m.querySelector('[data-testid="stChatMessageAvatarUser"]'));
  let session = null;
  for (const el of document.querySelectorAll('[class*="st-key-rename-"]')) {
    const m = /st-key-rename-([0-9a-f]{32})/.exec(el.className);
    if (m) { session = m[1]; break; }
  }
  const last = bots.length ? (bots[bots.length - 1].querySelector('[data-testid="stChatMessageContent"]')
                              || bots[bots.length - 1]) : null;
  const box = document.querySelector('[data-testid="stChatInputTextArea"]');
  return {
    idle: !!app && app.getAttribute('data-test-script-state') === 'notRunning',
    session, users: users.length, bots: bots.length,
    last: last ? last.innerText.trim() : '',
    usable: !!box && !box.disabled,
    exception: !!document.querySelector('[data-testid="stException"]'),
  };
}
"""
# Answer k drawn: the run is over, k questions and k answers shown, the last answer has text
# (not the "Searching your notes…" status alone) and the chat box takes input again, and all
# that for SETTLE_MS on end (the app's own st.rerun() after an answer passes through "not
# running" for a moment); `settled_ms` says how long ago it first held, taken off the time.
SETTLE_MS = 400
DONE_JS = (
    "(k) => { const s = (" + SNAPSHOT_JS + ")(); "
    "const done = s.idle && s.usable && s.users >= k && s.bots >= k && s.last && "
    "(!s.last.includes('Searching your notes') || s.last.includes('Something went wrong')); "
    "const now = performance.now(); "
    "if (!done) { window.__loadBench = null; return false; } "
    "if (!window.__loadBench || window.__loadBench.k !== k) window.__loadBench = {k, since: now}; "
    "const held = now - window.__loadBench.since; "
    f"return held >= {SETTLE_MS} ? {{...s, settled_ms: held}} : false; }}"
)
READY_JS = "() => { const s = (" + SNAPSHOT_JS + ")(); return s.idle && s.usable && s.session ? s : false; }"
CHAT_JS = "(id) => { const s = (" + SNAPSHOT_JS + ")(); return s.idle && s.usable && s.session === id ? s : false; }"
LOAD_FLAGS = [  # a page of its own that must not be throttled as a background page
    *CHROMIUM_FLAGS,
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


class Browser:
    """One Chromium page in a chat of its own. Playwright's sync API is bound to the thread that
    started it, so every call runs on the one thread of `self.pool`."""

    def __init__(self, url: str, chat: str):
        self.url, self.chat = url, chat
        self.asked: list[str] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self.pw = self.browser = self.page = None

    def open(self) -> dict:
        return self.pool.submit(self._open).result(timeout=PAGE_MS / 1000 + 60)

    def _open(self) -> dict:
        from playwright.sync_api import sync_playwright

        start = time.perf_counter()
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=LOAD_FLAGS)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(30_000)
        self.page.goto(self.url, timeout=PAGE_MS)
        shown = self.page.wait_for_function(READY_JS, polling=100, timeout=PAGE_MS).json_value()
        if shown["session"] != self.chat:  # pick its chat in the sidebar, as a person would
            self.page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
            self.page.get_by_role("option", name=re.compile(rf"· {self.chat[:6]}$|^New chat$")).first.click()
            self.page.wait_for_function(CHAT_JS, arg=self.chat, polling=100, timeout=60_000)
        return {"page_ready_s": round(time.perf_counter() - start, 1)}

    def ask_when(self, go: threading.Event, question: str) -> Future:
        return self.pool.submit(self._ask, go, question)

    def _ask(self, go: threading.Event, question: str) -> dict:
        go.wait(timeout=PAGE_MS / 1000)
        self.asked.append(question)
        k = len(self.asked)
        box = self.page.get_by_test_id("stChatInputTextArea")
        try:
            box.fill(question)
            start = time.perf_counter()
            box.press("Enter")
            shown = self.page.wait_for_function(DONE_JS, arg=k, polling=50, timeout=ANSWER_S * 1000).json_value()
        except Exception as exc:
            return {"ok": False, "error": short(exc)}
        ms = (time.perf_counter() - start) * 1000 - shown["settled_ms"]
        problem = None
        if "Something went wrong" in shown["last"] or shown["exception"]:
            problem = f"answer: {shown['last'][:200]!r}"
        elif shown["session"] != self.chat:
            problem = f"the page shows chat {shown['session']}"
        elif shown["users"] != k or shown["bots"] != k:
            problem = f"{shown['users']} questions and {shown['bots']} answers drawn after question {k}"
        seen = {"ok": problem is None, "ms": round(ms, 1), "nothing_relevant": shown["last"].startswith(NOTHING)}
        return {**seen, "error": problem} if problem else seen

    def close(self) -> None:
        def _close() -> None:
            for closing in (self.browser, self.pw):
                try:
                    if closing is not None:
                        closing.close() if closing is self.browser else closing.stop()
                except Exception:
                    pass

        try:  # never raises: a browser that hangs must not cost the figures
            self.pool.submit(_close).result(timeout=30)
        except Exception:
            pass
        finally:
            self.pool.shutdown(wait=False)


def start_browser(url: str, store) -> tuple[Browser | None, dict]:
    """The sanity-check browser on its own chat, or why there is none."""
    if not USE_BROWSER:
        return None, {"skipped": "LOAD_BROWSER=0"}
    if CHROMIUM is None:
        return None, {"skipped": "Debian's chromium is not installed (no browser is downloaded)"}
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return None, {"skipped": f"playwright is not installed ({exc})"}
    browser = Browser(url, store.sessions.create("").id)
    try:
        info = browser.open()
    except Exception as exc:
        browser.close()
        return None, {"skipped": f"the page did not open: {short(exc)}"}
    return browser, {"chromium": CHROMIUM, **info}


# ----------------------------------------------------------------------------- the history
class History:
    """What every chat must hold, read back from the history database after each level. A
    level is charged with what changed for the worse since the previous check."""

    def __init__(self, store):
        self.store = store
        self.expected: dict[str, list[str]] = {}  # chat -> its questions (the live list)
        self.seen: dict[str, Counter] = {}

    def expect(self, chat: str, asked: list[str]) -> None:
        self.expected[chat] = asked

    def check(self) -> tuple[Counter, list[str]]:
        level: Counter = Counter()
        problems: list[str] = []
        listed = {s.id for s in self.store.sessions.list("")}
        for chat in sorted(listed | set(self.expected)):
            now, note = self.count(chat, listed)
            worse = now - self.seen.get(chat, Counter())
            if worse:
                problems.append(f"chat {chat[:8]}: {dict(worse)} ({note})")
            level += worse
            self.seen[chat] = now
        return level, problems

    def count(self, chat: str, listed: set[str]) -> tuple[Counter, str]:
        asked = self.expected.get(chat)
        if chat not in listed:
            return Counter(lost=2 * len(asked or [])), "the chat is gone"
        messages = self.store.sessions.messages(chat, "").messages
        if asked is None:  # a chat no session asked in: everything in it is misplaced
            return Counter(misplaced=len(messages)), f"{len(messages)} messages in a chat nobody asked in"
        humans = [str(m.content) for m in messages if m.type == "human"]
        details = [m.additional_kwargs.get("details") or {} for m in messages if m.type == "ai"]
        # An answer records its question; an error answer does not, and stands for a missing one.
        want, got, answered = (
            Counter(asked),
            Counter(humans),
            Counter(d["question"] for d in details if d.get("question")),
        )
        unattributed = sum(1 for d in details if not d.get("question"))
        extra, extra_answers = got - want, answered - want
        counts = Counter(
            lost=sum((want - got).values()) + max(0, sum((want - answered).values()) - unattributed),
            duplicated=sum(n for q, n in (extra + extra_answers).items() if q in want)
            + max(0, unattributed - sum((want - answered).values())),
            misplaced=sum(n for q, n in (extra + extra_answers).items() if q not in want),
            stored_errors=sum(1 for d in details if d.get("error")),
        )
        types = [m.type for m in messages]
        if types != ["human", "ai"] * len(asked) and not +counts:
            counts["misordered"] = 1
        return +counts, f"holds {types}"


# ----------------------------------------------------------------------------- one level
def run_sessions(sessions: list[Session], questions: list[list[str]], go: threading.Event, gate=None) -> None:
    def person(session: Session, mine: list[str]) -> None:
        go.wait()
        for k, question in enumerate(mine, 1):
            if gate is not None and k == len(mine):
                gate.wait(timeout=REINGEST_S)
            try:
                session.ask(question)
            except Exception as exc:
                session.errors.append(f"answer {k}: {short(exc)}")
                return

    threads = [threading.Thread(target=person, args=(s, q), daemon=True) for s, q in zip(sessions, questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=HTTP_S * PER_SESSION + REINGEST_S)


def open_sessions(base: str, store, history: History, n: int) -> list[Session]:
    sessions = []
    for _ in range(n):
        chat = store.sessions.create("").id
        session = Session(base, chat, [])
        history.expect(chat, session.asked)
        sessions.append(session)
    with ThreadPoolExecutor(max_workers=n) as pool:
        for session, outcome in zip(sessions, pool.map(lambda s: _try(s.open), sessions)):
            if outcome:
                session.errors.append(f"opening: {outcome}")
    return sessions


def _try(action) -> str | None:
    try:
        action()
    except Exception as exc:
        return short(exc)
    return None


def measure(
    base: str, pid: int, store, history: History, n: int, offset: int, browser: Browser | None, question: str | None
) -> tuple[dict, list[Session]]:
    """n sessions open their chats (not timed), then ask at once; the server's CPU meanwhile."""
    sessions = open_sessions(base, store, history, n)
    go = threading.Event()
    asked = [questions_of(s, offset) for s in range(n)]
    # The browser asks with the sessions; at one session, once it is done: one person at a time.
    alone = threading.Event()
    beside = browser.ask_when(go if n > 1 else alone, question) if browser and question else None
    load = os.getloadavg()[0]
    cpu0, own0, all0, start = proc_cpu_s(pid), time.process_time(), machine_busy_s(), time.perf_counter()
    go.set()
    run_sessions([s for s in sessions if not s.errors], [q for s, q in zip(sessions, asked) if not s.errors], go)
    answered = time.perf_counter()
    alone.set()
    try:
        seen = beside.result(timeout=ANSWER_S + 30) if beside else None
    except Exception as exc:  # the browser hangs: its question counts as an error
        seen = {"ok": False, "error": short(exc)}
    if seen is not None:
        seen["asked"] = "with the sessions" if n > 1 else "after the session (one person at a time)"
    end, cpu1, own1, all1 = time.perf_counter(), proc_cpu_s(pid), time.process_time(), machine_busy_s()
    samples = [a["ms"] / 1000 for s in sessions for a in s.answers if "ms" in a and "error" not in a]
    counts, problems = history.check()
    errors = [f"session {i}: {e}" for i, s in enumerate(sessions) for e in s.errors]
    if seen is not None and not seen["ok"]:
        errors.append(f"browser: {seen.get('error')}")
    answers = len(samples) + (1 if seen and seen.get("ok") else 0)
    server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    stats = summary(samples) if samples else {"median_ms": None, "p95_ms": None, "n": 0}
    sizes = [a["bytes"] for s in sessions for a in s.answers if "bytes" in a]
    level = {
        "sessions": n,
        "answers": len(samples),
        "p50_ms": round(stats["median_ms"], 1) if samples else None,
        "p95_ms": round(stats["p95_ms"], 1) if samples else None,
        "max_ms": round(max(samples) * 1000, 1) if samples else None,
        "answers_per_s": round(len(samples) / (answered - start), 2) if samples else 0.0,
        "server_cpu_s": round(server_cpu, 2) if server_cpu is not None else None,
        "server_cpu_s_per_answer": round(server_cpu / answers, 3) if server_cpu is not None and answers else None,
        "server_cores_busy": round(server_cpu / (end - start), 2) if server_cpu is not None else None,
        "client_cpu_s": round(own1 - own0, 2),
        # Everything else on the machine meanwhile (Chromium included): other work on the same
        # cores slows the answers down without showing in the server's CPU time.
        "rest_of_machine_cores_busy": round((all1 - all0 - server_cpu - (own1 - own0)) / (end - start), 2)
        if server_cpu is not None and all0 is not None and all1 is not None
        else None,
        "load_average_1min_before": round(load, 2),
        "server_rss_mb": proc_rss_mb(pid),
        "response_kb_mean": round(sum(sizes) / len(sizes) / 1024, 1) if sizes else None,
        "lost_messages": counts["lost"],
        "duplicated_messages": counts["duplicated"],
        "misplaced_messages": counts["misplaced"],
        "stored_error_answers": counts["stored_errors"],
        "answers_nothing_relevant": sum(1 for s in sessions for a in s.answers if a.get("nothing")),
        "errors": len(errors) + counts["stored_errors"] + counts["misordered"],
        "wall_s": round(answered - start, 1),
        "browser": seen if seen is not None else "skipped",
    }
    if errors or problems:
        level["error_details"] = (errors + problems)[:10]
    return level, sessions


# ----------------------------------------------------------------------------- re-ingest
def reingest_under_load(base: str, pid: int, store, history: History, env: dict, notes_file: Path, work: Path) -> dict:
    """A note changes and `python -m ingest` runs in another process while sessions ask."""
    token = f"lbc{secrets.token_hex(4)}"
    with open(notes_file, "a", encoding="utf-8") as fh:
        fh.write(f"\n- Load benchmark canary\n    - The load benchmark canary word is {token}.\n")
    n = REINGEST_SESSIONS
    sessions = open_sessions(base, store, history, n)
    go, done = threading.Event(), threading.Event()
    result: dict = {}

    def ingest() -> None:
        go.wait()
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "ingest", "--json"],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=REINGEST_S,
            )
            result["returncode"] = proc.returncode
            try:
                report = json.loads(proc.stdout.strip().splitlines()[-1])
                result["report"] = {k: report.get(k) for k in ("chunks", "added", "updated", "removed", "unchanged")}
            except (ValueError, IndexError):
                result["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        except subprocess.TimeoutExpired:
            result["returncode"], result["error"] = None, f"over {REINGEST_S} s"
        result["start"], result["end"] = start, time.perf_counter()
        done.set()

    worker = threading.Thread(target=ingest, daemon=True)
    worker.start()
    began = time.perf_counter()
    go.set()
    # Each session's last question waits for the ingest's end: answers during it and after it.
    run_sessions(sessions, [questions_of(s, 24) for s in range(n)], go, gate=done)
    worker.join(timeout=REINGEST_S)
    counts, problems = history.check()
    ended = result.get("end", time.perf_counter())
    answers = [a for s in sessions for a in s.answers]
    during = [a for a in answers if "end" in a and a["end"] >= result.get("start", began) and a["start"] <= ended]
    after = [a for a in answers if "start" in a and a["start"] > ended]
    # The new note: asked by a session that has only had fragment runs since the ingest ended,
    # then by a new session, whose first run is a full one.
    canary: dict = {"token": token}
    old = sessions[0] if sessions and not sessions[0].errors else None
    for who in ("old_session", "new_session"):
        try:
            if who == "new_session":
                old = open_sessions(base, store, history, 1)[0]
                sessions.append(old)
            if old is None:
                continue
            answer = last_answer(old.ask(CANARY_QUESTION))
            canary[f"{who}_found_it"] = token in answer
            canary[f"{who}_answer"] = answer[:160]
        except Exception as exc:
            canary[f"{who}_error"] = short(exc)
    after_counts, after_problems = history.check()
    counts += after_counts
    errors = [f"session {i}: {e}" for i, s in enumerate(sessions) for e in s.errors] + problems
    errors += after_problems
    return {
        "sessions": n,
        "how": "a note appended to the served copy, then python -m ingest on the same STORE_DIR",
        "returncode": result.get("returncode"),
        "ingest_s": round(ended - result.get("start", began), 1),
        **({"report": result["report"]} if "report" in result else {}),
        **({"error": result["error"]} if "error" in result else {}),
        "answers_during": sum(1 for a in during if "ms" in a),
        "answers_after": sum(1 for a in after if "ms" in a),
        "answer_errors": sum(1 for a in answers if "error" in a),
        "answers_nothing_relevant_during": sum(1 for a in during if a.get("nothing")),
        "answers_nothing_relevant_after": sum(1 for a in after if a.get("nothing")),
        "p95_ms_during": round(summary([a["ms"] / 1000 for a in during if "ms" in a])["p95_ms"], 1)
        if any("ms" in a for a in during)
        else None,
        "lost_messages": counts["lost"],
        "duplicated_messages": counts["duplicated"],
        "misplaced_messages": counts["misplaced"],
        "errors": len(errors) + counts["stored_errors"],
        "new_note": canary,
        **({"error_details": errors[:10]} if errors else {}),
    }


# ----------------------------------------------------------------------------- main
def build_store(work: Path) -> tuple[Path, Path, float]:
    """The bundled notes copied and ingested into a fresh store (or LOAD_STORE copied)."""
    from assistant.core.settings import Settings
    from ingest.pipeline import run_ingest

    notes, store_dir = work / "notes", work / "store"
    shutil.copytree(PROJECT / "notes", notes)
    start = time.perf_counter()
    given = os.environ.get("LOAD_STORE")
    if given and (Path(given) / "manifest.json").exists():
        shutil.copytree(given, store_dir)
    else:
        run_ingest(Settings(_env_file=None, store_dir=store_dir, notes_path=notes, llm_provider="none"))
    return notes, store_dir, time.perf_counter() - start


def targets(levels: list[dict], reingest: dict | None) -> dict:
    by_n = {lv["sessions"]: lv for lv in levels}
    one, eight, sixteen = by_n.get(1), by_n.get(8), by_n.get(16)
    ratio = round(eight["p95_ms"] / one["p95_ms"], 2) if one and eight and one["p95_ms"] and eight["p95_ms"] else None
    clean = [
        lv["lost_messages"] + lv["duplicated_messages"] + lv["misplaced_messages"]
        for lv in levels + ([reingest] if reingest and "sessions" in reingest else [])
    ]
    return {
        "p95_8_vs_1": {
            "target": f"<= {P95_RATIO_MAX}",
            "value": ratio,
            "met": None if ratio is None else ratio <= P95_RATIO_MAX,
        },
        "answers_per_s_8_vs_1": {
            "target": ">= 1 (answers per second at 8 sessions >= at 1)",
            "value": round(eight["answers_per_s"] / one["answers_per_s"], 2)
            if one and eight and one["answers_per_s"]
            else None,
            "met": None if not (one and eight) else eight["answers_per_s"] >= one["answers_per_s"],
        },
        "errors_at_16": {
            "target": 0,
            "value": sixteen["errors"] if sixteen else None,
            "met": None if not sixteen else sixteen["errors"] == 0 and sixteen["answers"] == 16 * PER_SESSION,
        },
        "lost_duplicated_misplaced": {
            "target": "0 at every level",
            "value": sum(clean),
            "met": sum(clean) == 0,
        },
    }


def main() -> None:
    from assistant.chat.store import ChatStore

    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    server = browser = None
    data: dict = {"benchmark": "load"}
    try:
        notes, store_dir, ingest_s = build_store(work)
        history_url = f"sqlite:///{work / 'history.sqlite3'}"
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
            "STORE_DIR": str(store_dir),
            "NOTES_PATH": str(notes),
            "HISTORY_DB_URL": history_url,
            "LLM_PROVIDER": "none",
            "WATCH_NOTES": "false",
        }
        # The server runs in the work folder: the project's Streamlit config, no `.env`, no secrets.
        (work / ".streamlit").mkdir()
        shutil.copy(PROJECT / ".streamlit" / "config.toml", work / ".streamlit" / "config.toml")
        (work / "secrets.toml").write_text("# no [auth]: the local user, no sign-in\n", encoding="utf-8")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = streamlit_command(port, PROJECT / "app.py", "--secrets.files", str(work / "secrets.toml"))
        command += ["--server.enableAgentApi", "true", "--server.agentWaitTimeout", str(ANSWER_S)]
        started = time.perf_counter()
        with open(work / "streamlit.log", "wb") as log:
            server = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(port, timeout=90.0, proc=server)
        wait_healthy(base)
        store = ChatStore(history_url)
        history = History(store)

        # Warm-up, not measured: the models load on the first answer, and the app's warm-up
        # thread (example questions and needs for first pages) must be over before any level.
        warm = open_sessions(base, store, history, 1)[0]
        warm.ask(WARMUP_QUESTION)
        warmup = {"first_answer_ms": round(warm.answers[0]["ms"], 1)}
        probe = open_sessions(base, store, history, 1)[0]
        deadline = time.time() + 180
        while not any(a["key"].startswith("example-need-") for a in probe.snapshot.get("actions", [])):
            if time.time() > deadline:
                warmup["warm_up_unfinished"] = "no examples of needs on a first page after 180 s"
                break
            time.sleep(1)
            probe.interact()
        warmup["warm_s"] = round(time.perf_counter() - started, 1)
        cpu0 = proc_cpu_s(server.pid)
        time.sleep(2)
        warmup["idle_server_cpu_s_per_s"] = round((proc_cpu_s(server.pid) - cpu0) / 2, 3) if cpu0 is not None else None

        browser, browser_info = start_browser(base, store)
        if browser is not None:
            history.expect(browser.chat, browser.asked)

        levels = []
        for i, n in enumerate(LEVELS):
            question = BROWSER_QUESTIONS[i % len(BROWSER_QUESTIONS)]
            level, _ = measure(base, server.pid, store, history, n, 0, browser, question)
            levels.append(level)
        reingest = None
        if USE_REINGEST:
            notes_file = next(p for p in sorted(notes.rglob("*")) if p.is_file())
            reingest = reingest_under_load(base, server.pid, store, history, env, notes_file, work)
        goals = targets(levels, reingest)
        data.update(
            {
                "driver": "Streamlit agent API: real sessions of one `streamlit run` server, fragment reruns",
                "cpus": os.cpu_count(),
                "questions_per_session": PER_SESSION,
                "setup": {"ingest_s": round(ingest_s, 1), **warmup},
                "browser": browser_info,
                "levels": levels,
                "reingest_under_load": reingest if reingest is not None else {"skipped": "LOAD_REINGEST=0"},
                "targets": goals,
                "met": all(t["met"] is True for t in goals.values()),
            }
        )
    finally:
        if browser is not None:
            browser.close()
        if server is not None:
            stop(server)
    # What the server logged as exceptions (the tracebacks' last lines), once each.
    log_file = work / "streamlit.log"
    if log_file.exists():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", log_file.read_text(encoding="utf-8", errors="replace"))
        raised = re.findall(r"^(\w+(?:Error|Exception)\b.*)$", plain, flags=re.MULTILINE)
        data["server_exceptions"] = {line[:200]: raised.count(line) for line in dict.fromkeys(raised)}
    data["total_s"] = round(time.perf_counter() - began, 1)
    emit(data)
    if os.environ.get("LOAD_KEEP"):
        print(f"kept: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
