"""The login in a real browser: a wrong password refused, a viewer who sees the canvas but no Save or Run
button, and an editor who does; logging out brings the form back.

`taskloom ui` serves the app on a free loopback port over a home with accounts; Playwright drives Debian's
chromium (installed by .ci/run; a missing browser fails in CI). XSRF protection stays on, as `taskloom ui`
starts the app. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import CHROMIUM_ARGS, chromium_path, serve_app, shot, wait_idle
from clitools import free_port, query, taskloom

playwright = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
FLOW = 'iframe[title="streamlit_flow.streamlit_flow"]'
PASSWORDS = {"ann": "ann's long password", "vic": "vic's long password"}


@pytest.fixture
def app(home):
    """The app over a home with an admin (ann) and a viewer (vic), and the hello example."""
    assert taskloom(home, "import", str(ROOT / "assets" / "examples" / "hello.json")).returncode == 0
    for name, role in (("ann", "admin"), ("vic", "viewer")):
        done = taskloom(home, "users", "add", name, "--role", role, input=PASSWORDS[name] + "\n")
        assert done.returncode == 0, done.stderr
    port = free_port()
    proc = serve_app(home, port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def browser():
    executable = chromium_path()
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_page(browser):
    page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    page.set_default_timeout(30_000)
    return page


def log_in(page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.locator(".st-key-login_submit button").click()
    wait_idle(page)


def test_login_in_the_browser_and_a_viewer_sees_no_save_button(browser, app, home):
    page = new_page(browser)
    page.goto(app)
    page.get_by_label("User name").wait_for()
    wait_idle(page)
    assert page.locator(FLOW).count() == 0  # nothing but the login form
    shot(page, "login-01-form")

    log_in(page, "vic", "not the password")
    page.get_by_text("wrong user name or password").wait_for()
    assert page.locator(FLOW).count() == 0

    log_in(page, "vic", PASSWORDS["vic"])
    page.frame_locator(FLOW).locator(".react-flow__pane").wait_for()
    wait_idle(page)
    page.get_by_text("Signed in as").wait_for()
    shot(page, "login-02-viewer")
    assert page.locator(".st-key-designer_save").count() == 0
    assert page.locator(".st-key-designer_run").count() == 0
    assert page.locator(".st-key-designer_export").count() == 1  # reading and exporting stay
    page.get_by_role("link", name="Workflows").click()
    page.locator(".st-key-wf_open_hello").wait_for()
    wait_idle(page)
    assert page.locator(".st-key-wf_run_hello").count() == 0
    assert page.get_by_role("link", name="Audit").count() == 0

    page.locator(".st-key-logout button").click()
    page.get_by_label("User name").wait_for()
    assert [r[0] for r in query(home, "SELECT result FROM audit WHERE action = 'login' ORDER BY id")] == [
        "refused", "ok"]
    assert query(home, "SELECT actor, source FROM audit WHERE action = 'logout'") == [("vic", "web")]

    admin = new_page(browser)  # another browser session: its own login
    admin.goto(app)
    admin.get_by_label("User name").wait_for()
    log_in(admin, "ann", PASSWORDS["ann"])
    admin.frame_locator(FLOW).locator(".react-flow__pane").wait_for()
    wait_idle(admin)
    admin.locator(".st-key-designer_save").wait_for()
    assert admin.get_by_role("link", name="Audit").count() == 1
    shot(admin, "login-03-admin")
