"""Real OpenID Connect sign-in for the browser tests, no mocks of Streamlit.

- `oidc_provider()`: oidc-provider-mock (a real OpenID provider built on Authlib) on a free
  loopback port, in a thread of the test process. It accepts any client id and secret, and
  its login page lets you type the user's `sub`; the user's `email` claim is that `sub`.
- `write_secrets()`: a Streamlit secrets file whose `[auth]` section points at it.
- `start_app()`: `streamlit run app.py` on a free loopback port, with that secrets file
  (`--secrets.files`, so no file under `.streamlit/` or `~/.streamlit/` is touched).
- `sign_in()` / `sign_out()`: what a person does in Chromium, the provider's pages included.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import CHROMIUM, PROJECT, free_port, stop, streamlit_command, wait_for_port

# The marks of a test that signs in through the provider in a real browser.
SIGNED_IN_BROWSER_MARKS = [
    pytest.mark.browser,
    # the provider runs in this process: its Authlib's own deprecations are not ours
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
    pytest.mark.filterwarnings("ignore:get_jwt_config"),
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"),
]

CLIENT_ID = "notes-assistant-tests"
FIRST_PAGE_MS = 150_000  # the first page of a fresh server loads the index and the models


@contextmanager
def oidc_provider() -> Iterator[str]:
    """The provider's issuer URL, http://127.0.0.1:<port>; stopped when the block ends."""
    with warnings.catch_warnings():  # its `from authlib import jose` is deprecated: not ours
        import authlib.deprecate  # noqa: F401 - sets Authlib's warnings to "always" when imported

        warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
        from oidc_provider_mock import run_server_in_thread

    # It binds "localhost", which is 127.0.0.1 for an IPv4 server; the issuer it announces is
    # the host it is asked on, so everything below asks it on 127.0.0.1.
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # not a line per request on stderr
    try:
        with run_server_in_thread(port=0) as server:
            yield f"http://127.0.0.1:{server.server_port}"
    finally:
        werkzeug_log.setLevel(level)


def write_secrets(path: Path, app_port: int, issuer: str) -> Path:
    """`[auth]` for Streamlit's default provider: any client id and secret do for the mock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    return path


def start_app(port: int, env: dict[str, str], secrets_file: Path, log: Path | None = None) -> subprocess.Popen:
    """`streamlit run app.py` on 127.0.0.1:<port>, reading secrets only from `secrets_file`."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        streamlit_command(port, str(PROJECT / "app.py"), "--secrets.files", str(secrets_file)),
        cwd=PROJECT,
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    if log is not None:
        out.close()  # the child has its own copy
    try:
        wait_for_port(port, timeout=90, proc=proc)
    except BaseException:
        stop(proc)
        raise
    return proc


@contextmanager
def signed_in_app(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, str]]:
    """(app URL, issuer URL): the provider and the app with sign-in configured against it."""
    with oidc_provider() as issuer:
        port = free_port()
        secrets_file = write_secrets(workdir / "secrets.toml", port, issuer)
        proc = start_app(port, env, secrets_file, log=workdir / "streamlit.log")
        try:
            yield f"http://127.0.0.1:{port}", issuer
        finally:
            stop(proc)


def sign_in(page, app_url: str, issuer: str, email: str) -> None:
    """Open the app, press "Sign in", type the user on the provider's page, come back signed in."""
    from playwright.sync_api import expect

    page.goto(app_url)
    button = page.get_by_role("button", name="Sign in")
    expect(button).to_be_visible(timeout=FIRST_PAGE_MS)
    button.click()
    page.wait_for_url(f"{issuer}/oauth2/authorize*", timeout=30_000)
    page.locator("input[name=sub]").fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{app_url}/*", timeout=30_000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {email}", timeout=FIRST_PAGE_MS)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=FIRST_PAGE_MS)


def sign_out(page, app_url: str, issuer: str) -> None:
    """Press "Sign out" in the sidebar; the provider asks to end its session too; back at "Sign in"."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{issuer}/oauth2/end_session*", timeout=30_000)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{app_url}/*", timeout=30_000)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)


def send(page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def shoot(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    print(f"screenshot: {path}")
    return path
