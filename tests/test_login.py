"""Real sign-in: a real OpenID provider (oidc-provider-mock) on a loopback port, `streamlit run
app.py` with an `[auth]` section pointing at it, and Debian's Chromium signing in as two people.

Nothing of Streamlit is mocked: the login goes through Streamlit's own /auth/login and
/oauth2callback routes, the provider's login page and its token endpoint. The history
database is then read with `ChatStore` to check what was stored, and for whom.
A forged session id is sent the way a tampered browser would: alice's page rewrites, on its
own WebSocket, the value of the "Chat" picker to bob's session id.
"""

from __future__ import annotations

import re
import secrets

import pytest

from assistant.chat.schema import HistoryError
from assistant.chat.store import ChatStore
from tests.oidc import FIRST_PAGE_MS, SIGNED_IN_BROWSER_MARKS, send, shoot, sign_in, sign_out, signed_in_app
from tests.support import CHROMIUM, CHROMIUM_FLAGS

pytestmark = SIGNED_IN_BROWSER_MARKS

ALICE = "alice@example.com"
BOB = "bob@example.com"
ANSWER_MS = 90_000


@pytest.fixture(scope="module")
def signed_in_server(bundled_settings, tmp_path_factory):
    """(app URL, issuer URL, history URL, folder for screenshots)."""
    work = tmp_path_factory.mktemp("login")
    db = f"sqlite:///{work / 'history.sqlite3'}"
    env = {
        "STORE_DIR": str(bundled_settings.store_dir),
        "NOTES_PATH": str(bundled_settings.notes_path),
        "HISTORY_DB_URL": db,
        "LLM_PROVIDER": "none",
        "HF_HUB_OFFLINE": "1",
        "WATCH_NOTES": "false",
    }
    with signed_in_app(env, work) as (app_url, issuer):
        yield app_url, issuer, db, work


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    return context.new_page()


def ask_and_wait(page, question: str, answers_before: int) -> None:
    """Send a question; wait until its answer is stored and drawn and the chat box is back."""
    from playwright.sync_api import expect

    send(page, question)
    messages = page.get_by_test_id("stChatMessage")
    expect(messages.filter(has_text=question)).to_have_count(1, timeout=ANSWER_MS)
    expect(messages.filter(has_text="From your notes")).to_have_count(answers_before + 1, timeout=ANSWER_MS)
    expect(page.get_by_text("Ask your notes", exact=True)).to_have_count(0, timeout=ANSWER_MS)  # rerun done
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_editable(timeout=ANSWER_MS)


def forge_chat_picker(page, forged: dict) -> None:
    """Rewrite, on the page's own WebSocket to the server, the "Chat" picker's value to
    `forged["session_id"]` while that key is set: what a tampered browser can send."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    def route(ws) -> None:
        server = ws.connect_to_server()

        def to_server(message) -> None:
            if isinstance(message, bytes) and forged.get("session_id"):
                msg = BackMsg()
                msg.ParseFromString(message)
                if msg.WhichOneof("type") == "rerun_script":
                    for widget in msg.rerun_script.widget_states.widgets:
                        if widget.id.endswith("-session_select") and widget.WhichOneof("value") == "string_value":
                            widget.string_value = forged["session_id"]
                            forged["sent"] = forged.get("sent", 0) + 1
                    message = msg.SerializeToString()
            server.send(message)

        ws.on_message(to_server)

    page.route_web_socket(re.compile(r".*/_stcore/stream$"), route)


def pick_chat(page, name: str) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=name).click()


def test_login_two_users_see_only_their_own_chats_forged_id_refused_and_sign_out(signed_in_server, browser):
    from playwright.sync_api import expect

    app_url, issuer, db, work = signed_in_server
    tag = secrets.token_hex(3)
    alice_q = f"what is cache-aside? (alice {tag})"
    bob_q = f"what is sharding? (bob {tag})"

    alice = new_page(browser)
    forged: dict = {}
    forge_chat_picker(alice, forged)  # a no-op until forged["session_id"] is set
    bob = new_page(browser)

    sign_in(alice, app_url, issuer, ALICE)
    ask_and_wait(alice, alice_q, 0)
    sign_in(bob, app_url, issuer, BOB)
    ask_and_wait(bob, bob_q, 0)
    shoot(alice, work / "alice-chat.png")
    shoot(bob, work / "bob-chat.png")

    # In the pages: each sees their own question, never the other's, also on a fresh load.
    for page, own, other, who in ((alice, alice_q, bob_q, ALICE), (bob, bob_q, alice_q, BOB)):
        main = page.get_by_role("main")
        expect(main).to_contain_text(own)
        assert other not in page.content()
        page.reload()
        expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {who}", timeout=FIRST_PAGE_MS)
        expect(main).to_contain_text(own, timeout=FIRST_PAGE_MS)
        assert other not in page.content()

    # In the database: each one's sessions hold only their own messages, once.
    store = ChatStore(db)
    (alice_session,) = store.sessions.list(ALICE)
    (bob_session,) = store.sessions.list(BOB)
    assert [m.content for m in store.sessions.messages(alice_session.id, ALICE).messages][0] == alice_q
    assert [m.content for m in store.sessions.messages(bob_session.id, BOB).messages][0] == bob_q
    assert store.sessions.count_messages(alice_session.id) == store.sessions.count_messages(bob_session.id) == 2
    with pytest.raises(HistoryError):
        store.sessions.get(bob_session.id, ALICE)
    with pytest.raises(HistoryError):
        store.sessions.messages(bob_session.id, ALICE)
    bob_before = store.sessions.get(bob_session.id, BOB)

    # A forged session id: alice's browser says she picked bob's chat. The app keeps her in
    # her own chats, shows nothing of bob's, and what she sends next stays hers.
    alice.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
    expect(alice.get_by_text("Ask your notes", exact=True)).to_be_visible(timeout=ANSWER_MS)  # an empty chat
    forged["session_id"] = bob_session.id
    first = alice_session.name  # chats are named by their first question
    assert first.startswith("what is cache-aside?")
    pick_chat(alice, first)
    expect(alice.get_by_test_id("stChatInputTextArea")).to_be_editable(timeout=ANSWER_MS)
    alice.wait_for_timeout(2_000)  # let the forged rerun finish drawing
    forged.pop("session_id")
    assert forged.get("sent", 0) >= 1, "the forged chat id was never sent"
    # the server acted on the forged id, not on the pick it replaced: it fell back to her newest chat
    expect(alice.get_by_role("heading", name=first)).to_have_count(0)
    expect(alice.get_by_test_id("stException")).to_have_count(0)
    assert bob_q not in alice.content()
    alice_again = f"what is a message queue? (alice again {tag})"
    ask_and_wait(alice, alice_again, alice.get_by_test_id("stChatMessage").filter(has_text="From your notes").count())
    assert bob_q not in alice.content()
    shoot(alice, work / "alice-after-forged-id.png")
    assert store.sessions.count_messages(bob_session.id) == 2
    assert store.sessions.get(bob_session.id, BOB).updated_at == bob_before.updated_at  # not even touched
    stored = [str(m.content) for s in store.sessions.list(ALICE) for m in store.sessions.messages(s.id, ALICE).messages]
    assert alice_again in stored and bob_q not in stored
    assert {s.user for s in store.sessions.list(ALICE)} == {ALICE}

    # Sign-out: back to "Sign in", nothing of the chats shown, also after a reload; bob is
    # still signed in in his own browser.
    sign_out(alice, app_url, issuer)
    shoot(alice, work / "alice-signed-out.png")
    for _ in range(2):
        expect(alice.get_by_role("button", name="Sign in")).to_be_visible(timeout=FIRST_PAGE_MS)
        expect(alice.get_by_test_id("stChatInputTextArea")).to_have_count(0)
        assert alice_q not in alice.content() and "Sign out" not in alice.get_by_role("main").inner_text()
        alice.reload()
    bob.reload()
    expect(bob.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {BOB}", timeout=FIRST_PAGE_MS)
    expect(bob.get_by_role("main")).to_contain_text(bob_q, timeout=FIRST_PAGE_MS)
    print(f"screenshots: {work}")


def test_login_is_all_a_signed_out_visitor_sees(signed_in_server, browser):
    from playwright.sync_api import expect

    app_url, _, db, work = signed_in_server
    page = new_page(browser)
    page.goto(app_url)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=FIRST_PAGE_MS)
    expect(page.get_by_role("main")).to_contain_text("sign in to see your own chats")
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
    expect(page.get_by_role("button", name="New chat")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert [b.inner_text() for b in page.get_by_role("button").all() if b.is_visible()] == ["Sign in"]
    shoot(page, work / "signed-out-visitor.png")
    assert ChatStore(db).sessions.list("") == []  # no local user's chat was made for the visitor
