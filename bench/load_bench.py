"""Concurrent people in real browsers: `streamlit run app.py` on a loopback port and 1, 4 and 8
users at once, each in a browser context of their own (their own Streamlit session), driven by
Debian's Chromium through Playwright. Each user presses "New chat", then asks three different
system-design questions, each as soon as the previous answer is drawn; the time from pressing
Enter to the answer drawn and the chat box usable again is one sample.

Afterwards the history database is read with ChatStore: every user's chat must hold exactly
their three questions and three answers, in order, once each, in their own session.
During the 8-user level the notes are re-ingested in another process, the way a second
terminal would (a new section in the copy of the notes the app serves, then `python -m ingest`
on the same STORE_DIR; BENCH_REINGEST=rebuild: `--rebuild` instead). It starts with the
questions and each user's third question waits for its end, so every user is answered while it
runs and after it has swapped the index; it must exit 0, no answer may fail, during or after.

Targets: 8 sessions p95 <= 3 x the 1-session p95; no lost, duplicated or misplaced message; no
error. No sign-in (the local user), no language model (LLM_PROVIDER=none), a fresh SQLite
history. The index is built in a temporary STORE_DIR (BENCH_STORE: a store to copy instead of
ingesting from scratch; BENCH_APP: another app file, to measure a change; BENCH_KEEP=1: keep the
temporary folder with the server's log). Loopback only; every wait has a timeout.

The users are asyncio tasks over one Chromium with one context each: Playwright's sync API is
bound to the thread that made it, and one browser process (not eight) keeps the client side
from eating the CPUs the server is measured on.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PROJECT, emit

from tests.support import CHROMIUM_FLAGS, free_port, streamlit_command, wait_for_port

LEVELS = tuple(int(x) for x in os.environ.get("BENCH_LEVELS", "1,4,8").split(","))
REINGEST_LEVEL = max(LEVELS)
PER_USER = 3
PAGE_MS = 150_000  # a first page may wait for the index and models to load
ANSWER_MS = 60_000
REINGEST_S = 300
DEADLINE_S = 540  # the browser part; setup (a cold ingest, ~100 s) comes on top
TARGET_RATIO = 3.0

# Three different questions per user, 24 in all: user n asks QUESTIONS[3n : 3n + 3].
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
]

# Eight pages at once: none of them is a "background" page to be slowed down.
LOAD_FLAGS = [
    *CHROMIUM_FLAGS,
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# The page as a person would judge it, read in one go. `session` is the chat the page shows:
# its id is in the class of the sidebar's "Rename to" box (key "rename-<session id>").
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
# (not the "Searching your notes…" status alone: after an error it stays above the error) and
# the chat box takes input again, and all that
# for SETTLE_MS on end: the app's own st.rerun() after an answer passes through "not running"
# for a moment, and a question typed then is lost with the redrawn chat box. `settled_ms`
# says how long ago it first held, to take off the measured time.
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
# A new, empty chat of this page's own, different from `previous`.
NEW_CHAT_JS = (
    "(previous) => { const s = (" + SNAPSHOT_JS + ")(); "
    "return s.idle && s.usable && s.session && s.session !== previous && s.users === 0 && s.bots === 0 ? s : false; }"
)
STUCK_JS = (
    "() => { const s = (" + SNAPSHOT_JS + ")(); const app = document.querySelector('[data-testid=\"stApp\"]'); "
    "const box = document.querySelector('[data-testid=\"stChatInputTextArea\"]'); "
    "return {script: app && app.getAttribute('data-test-script-state'), "
    "connection: app && app.getAttribute('data-test-connection-state'), users: s.users, bots: s.bots, "
    "typed: box ? box.value : null, last: s.last.slice(0, 60)}; }"
)
READY_JS = "() => { const s = (" + SNAPSHOT_JS + ")(); return s.idle && s.usable && s.session ? s : false; }"


def percentile(ms: list[float], q: float) -> float | None:
    if not ms:
        return None
    ordered = sorted(ms)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}"


# ----------------------------------------------------------------------------- one user
async def open_chat(browser, url: str):
    """A new browser context on the app; returns (context, page, the page's new chat id)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = await context.new_page()
    await page.goto(url, timeout=PAGE_MS)
    first = await (await page.wait_for_function(READY_JS, polling=100, timeout=PAGE_MS)).json_value()
    await page.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
    new = await page.wait_for_function(NEW_CHAT_JS, arg=first["session"], polling=50, timeout=ANSWER_MS)
    return context, page, (await new.json_value())["session"]


async def ask(page, question: str, k: int, answers: list[dict]) -> dict:
    """Ask; the answer's times go to `answers` (an answer that never came: as an error)."""
    box = page.get_by_test_id("stChatInputTextArea")
    await box.fill(question)
    start = time.perf_counter()
    await box.press("Enter")
    try:
        done = await page.wait_for_function(DONE_JS, arg=k, polling=50, timeout=ANSWER_MS)
        shown = await done.json_value()
    except Exception as exc:
        answers.append({"start": start, "end": time.perf_counter(), "error": True, "timeout": True})
        try:  # what the page showed when the answer did not come
            seen = await page.evaluate(STUCK_JS)
        except Exception:
            seen = "page unreadable"
        raise TimeoutError(f"answer {k} not drawn in {ANSWER_MS / 1000:.0f} s; the page: {seen}") from exc
    end = time.perf_counter() - shown["settled_ms"] / 1000  # when it was first drawn so
    error = "Something went wrong" in shown["last"] or shown["exception"]
    answers.append({"start": start, "end": end, "ms": (end - start) * 1000, "error": error})
    return shown


async def user(
    browser, url: str, n: int, ready: asyncio.Event, go: asyncio.Event, reingested: asyncio.Event | None
) -> dict:
    rec = {"user": n, "session": None, "asked": [], "answers": [], "errors": []}
    context = None
    try:
        try:
            context, page, rec["session"] = await open_chat(browser, url)
        finally:
            ready.set()  # ready or failed: the others do not wait for this one
        await asyncio.wait_for(go.wait(), timeout=PAGE_MS / 1000)
        for k, question in enumerate(QUESTIONS[PER_USER * n : PER_USER * n + PER_USER], 1):
            if k == PER_USER and reingested is not None:  # the last question: after the swap
                try:
                    await asyncio.wait_for(reingested.wait(), timeout=REINGEST_S)
                except TimeoutError:
                    pass
            rec["asked"].append(question)
            shown = await ask(page, question, k, rec["answers"])
            if rec["answers"][-1]["error"]:
                rec["errors"].append(f"answer {k}: {shown['last'][:300]}")
            if shown["session"] != rec["session"]:
                rec["errors"].append(f"answer {k}: the page moved to chat {shown['session']}")
    except Exception as exc:  # a timeout or a broken page: counted, the others go on
        rec["errors"].append(short(exc))
    finally:
        if context is not None:
            try:
                await context.close()
            except Exception:
                pass
    return rec


# ----------------------------------------------------------------------------- re-ingest
async def reingest(env: dict, notes_file: Path, rebuild: bool, done: asyncio.Event) -> dict:
    """Change a note (or re-embed everything) and run `python -m ingest` on the app's store."""
    try:
        return await _reingest(env, notes_file, rebuild)
    finally:
        done.set()


async def _reingest(env: dict, notes_file: Path, rebuild: bool) -> dict:
    if not rebuild:
        with open(notes_file, "a", encoding="utf-8") as fh:
            fh.write(
                f"- Load benchmark section {int(time.time())}\n"
                "    - This section was added while people were asking questions.\n"
            )
    cmd = [sys.executable, "-m", "ingest", "--json"] + (["--rebuild"] if rebuild else [])
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=str(PROJECT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=REINGEST_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"start": start, "end": time.perf_counter(), "returncode": None, "error": f"over {REINGEST_S} s"}
    end = time.perf_counter()
    result: dict = {"start": start, "end": end, "returncode": proc.returncode}
    try:
        report = json.loads(out.decode().strip().splitlines()[-1])
        result["report"] = {k: report.get(k) for k in ("chunks", "added", "updated", "removed", "unchanged")}
    except Exception:
        result["error"] = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1][:300]
    return result


# ----------------------------------------------------------------------------- accounting
def account(store, records: list[dict], before: set[str]) -> dict:
    """What the history holds for the level's users: lost, duplicated, misplaced, errors."""
    lost = duplicated = misplaced = stored_errors = 0
    problems: list[str] = []
    own = {r["session"] for r in records if r["session"]}
    for r in records:
        if not r["session"]:
            lost += 2 * len(r["asked"])
            continue
        messages = store.sessions.messages(r["session"], "").messages
        humans = [str(m.content) for m in messages if m.type == "human"]
        answers = [m for m in messages if m.type == "ai"]
        for q in r["asked"]:
            count = humans.count(q)
            lost += count == 0
            duplicated += max(0, count - 1)
        foreign = [h for h in humans if h not in r["asked"]]
        misplaced += len(foreign)
        lost += max(0, len(r["asked"]) - len(answers))
        duplicated += max(0, len(answers) - len(r["asked"]))
        for m in answers:
            if (m.additional_kwargs.get("details") or {}).get("error"):
                stored_errors += 1
                problems.append(f"user {r['user']}: stored answer: {str(m.content)[:300]}")
        types = [m.type for m in messages]
        if types != ["human", "ai"] * (len(types) // 2) or len(types) != 2 * PER_USER:
            problems.append(f"user {r['user']}: {len(types)} messages in its chat, order {types}")
        if humans != r["asked"][: len(humans)]:
            problems.append(f"user {r['user']}: its chat holds {humans}, it asked {r['asked']}")
    asked_here = {q for r in records for q in r["asked"]}
    for session in store.sessions.list(""):
        if session.id in before or session.id in own:
            continue
        strays = [str(m.content) for m in store.sessions.messages(session.id, "").messages]
        if strays:
            misplaced += sum(1 for s in strays if s in asked_here) or len(strays)
            problems.append(f"chat {session.id} of no user holds {len(strays)} messages")
    return {
        "lost": lost,
        "duplicated": duplicated,
        "misplaced": misplaced,
        "stored_errors": stored_errors,
        "problems": problems[:10],
    }


async def run_level(browser, url: str, store, sessions: int, reingest_args: tuple | None) -> tuple[dict, dict | None]:
    before = {s.id for s in store.sessions.list("")}
    readies = [asyncio.Event() for _ in range(sessions)]
    go = asyncio.Event()
    reingested = asyncio.Event() if reingest_args else None
    started = time.perf_counter()
    tasks = [asyncio.create_task(user(browser, url, n, readies[n], go, reingested)) for n in range(sessions)]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), timeout=PAGE_MS / 1000 + 30)
    except TimeoutError:
        pass
    asking = time.perf_counter()
    # The re-ingest starts with the questions; each user's last question waits for it to end,
    # so that everyone is answered while it runs and after it has swapped the index.
    ingest_task = asyncio.create_task(reingest(*reingest_args, reingested)) if reingest_args else None
    go.set()
    records = await asyncio.gather(*tasks)
    answered_at = time.perf_counter()
    ingest = await ingest_task if ingest_task else None
    answers = [a for r in records for a in r["answers"]]
    samples = [a["ms"] for a in answers if "ms" in a]
    counts = account(store, records, before)
    errors = [f"user {r['user']}: {e}" for r in records for e in r["errors"]]
    level = {
        "sessions": sessions,
        "answers": len(samples),
        "p50_ms": round(statistics.median(samples), 1) if samples else None,
        "p95_ms": percentile(samples, 0.95),
        "max_ms": round(max(samples), 1) if samples else None,
        "lost_messages": counts["lost"],
        "duplicated_messages": counts["duplicated"],
        "misplaced_messages": counts["misplaced"],
        # what the pages showed, and stored error answers no page showed (no double count)
        "errors": len(errors) + max(0, counts["stored_errors"] - sum(a.sessions.get("error", False) for a in answers)),
        "wall_s": round(answered_at - started, 1),
    }
    if errors or counts["problems"]:
        level["error_details"] = (errors + counts["problems"])[:10]
    if ingest is not None:
        during = [
            a for r in records for a in r["answers"] if ingest["start"] <= a["end"] and a["start"] <= ingest["end"]
        ]
        last_answer = max((a["end"] for a in answers), default=ingest["start"])
        ingest = {
            "how": "python -m ingest --rebuild" if reingest_args[2] else "a note changed, then python -m ingest",
            "started_after_s": round(ingest["start"] - started, 1),
            "seconds": round(ingest["end"] - ingest["start"], 1),
            "note": f"started with the questions; question {PER_USER} of each user waits for its end",
            "returncode": ingest["returncode"],
            **({"report": ingest["report"]} if "report" in ingest else {}),
            **({"error": ingest["error"]} if "error" in ingest else {}),
            "answers_during": len(during),
            "answer_errors_during": sum(1 for a in during if a.sessions.get("error")),
            "answers_after": sum(1 for a in answers if a["start"] > ingest["end"]),
            "answer_errors_after": sum(1 for a in answers if a["start"] > ingest["end"] and a.sessions.get("error")),
            "p95_ms_during": percentile([a["ms"] for a in during if "ms" in a], 0.95),
            "p95_ms_after": percentile([a["ms"] for a in answers if a["start"] > ingest["end"] and "ms" in a], 0.95),
            "finished_while_answering": asking <= ingest["end"] <= last_answer,
        }
    return level, ingest


async def one_answer(browser, url: str, question: str) -> dict:
    """A new user's question and its answer, not measured as a level (warm-up, after re-ingest)."""
    context = None
    try:
        context, page, _ = await open_chat(browser, url)
        answers: list[dict] = []
        shown = await ask(page, question, 1, answers)
        return {"ok": not answers[0]["error"], "ms": round(answers[0]["ms"], 1), "text": shown["last"][:160]}
    except Exception as exc:
        return {"ok": False, "error": short(exc)}
    finally:
        if context is not None:
            await context.close()


async def drive(url: str, store, reingest_args: tuple) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium"), args=LOAD_FLAGS)
        try:
            warmup = await one_answer(browser, url, "what is horizontal scaling?")  # models loaded first
            levels, ingest = [], None
            for n in LEVELS:
                level, got = await run_level(browser, url, store, n, reingest_args if n == REINGEST_LEVEL else None)
                levels.append(level)
                ingest = got or ingest
            if ingest is not None:
                ingest["answer_after_reingest"] = await one_answer(browser, url, "what is availability in numbers?")
            return {"warmup": warmup, "levels": levels, "reingest": ingest}
        finally:
            await browser.close()


# ----------------------------------------------------------------------------- main
def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        emit({"benchmark": "load", "skipped": "chromium not installed"})
        return
    from assistant.chat.store import ChatStore

    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    notes, store_dir = work / "notes", work / "store"
    shutil.copytree(PROJECT / "notes", notes)
    given = os.environ.get("BENCH_STORE")
    if given and (Path(given) / "manifest.json").exists():
        shutil.copytree(given, store_dir)  # a copy: the re-ingest below changes it
    history = f"sqlite:///{work / 'history.sqlite3'}"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "STORE_DIR": str(store_dir),
        "NOTES_PATH": str(notes),
        "HISTORY_DB_URL": history,
        "LLM_PROVIDER": "none",
        "WATCH_NOTES": "false",
    }
    subprocess.run(
        [sys.executable, "-m", "ingest", "--json"], cwd=PROJECT, env=env, check=True, capture_output=True, timeout=600
    )
    setup_s = time.perf_counter() - began
    secrets = work / "secrets.toml"
    secrets.write_text("# no [auth]: the local user, no sign-in\n", encoding="utf-8")
    port = free_port()
    log = work / "streamlit.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            streamlit_command(port, os.environ.get("BENCH_APP", "app.py"), "--secrets.files", str(secrets)),
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=90.0, proc=server)
        store = ChatStore(history)
        notes_file = next(p for p in sorted(notes.rglob("*")) if p.is_file())
        rebuild = os.environ.get("BENCH_REINGEST", "changed-note") == "rebuild"
        result = asyncio.run(
            asyncio.wait_for(drive(f"http://127.0.0.1:{port}", store, (env, notes_file, rebuild)), DEADLINE_S)
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    levels = result["levels"]
    by_n = {lv["sessions"]: lv for lv in levels}
    one, many = by_n.get(1), by_n.get(REINGEST_LEVEL)
    ratio = round(many["p95_ms"] / one["p95_ms"], 2) if one and many and one["p95_ms"] and many["p95_ms"] else None
    ingest = result["reingest"] or {}
    clean = all(
        lv["lost_messages"] == lv["duplicated_messages"] == lv["misplaced_messages"] == lv["errors"] == 0
        and lv["answers"] == lv["sessions"] * PER_USER
        for lv in levels
    )
    ingest_ok = (
        ingest.get("returncode") == 0
        and ingest.get("answers_during", 0) > 0
        and ingest.get("answers_after", 0) > 0
        and ingest.get("answer_errors_during") == ingest.get("answer_errors_after") == 0
        and (ingest.get("answer_after_reingest") or {}).get("ok") is True
    )
    data = {
        "benchmark": "load",
        "questions_per_user": PER_USER,
        "cpus": os.cpu_count(),
        "warmup_answer": result["warmup"],
        "levels": levels,
        "p95_8_vs_1": ratio,
        "reingest_during_8": ingest,
        "setup_s": round(setup_s, 1),
        "total_s": round(time.perf_counter() - began, 1),
        "targets": {
            "p95_ratio_max": TARGET_RATIO,
            "lost_messages": 0,
            "duplicated_messages": 0,
            "misplaced_messages": 0,
            "errors": 0,
            "reingest": "exits 0 while answers go on; no answer errors during or after it",
        },
        "met": bool(ratio is not None and ratio <= TARGET_RATIO and clean and ingest_ok),
    }
    # What the server logged as exceptions (the rich tracebacks' last lines), once each.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(encoding="utf-8", errors="replace"))
    raised = re.findall(r"^(\w+(?:Error|Exception)\b.*)$", plain, flags=re.MULTILINE)
    data["server_exceptions"] = {line[:200]: raised.count(line) for line in dict.fromkeys(raised)}
    emit(data)
    if os.environ.get("BENCH_KEEP"):
        print(f"kept: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
