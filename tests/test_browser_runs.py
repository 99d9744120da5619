"""A run from start to logs in a real browser: Workflows → Run now → Runs → the run's graph → a task's log.

`taskloom serve` (scheduler, REST API and web app) runs on free loopback
ports over a home where the hello example is imported; Playwright drives
Debian's chromium (installed by .ci/run). Screenshots go to tests/artifacts/;
with ``TASKLOOM_DOCS_SHOTS=1`` the run detail is also saved as
docs/images/run-detail.png.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from browser import CHROMIUM_ARGS, chromium_path, shot, wait_idle
from clitools import TASKLOOM, env_for, query, taskloom, wait_for

playwright = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
FLOW = 'iframe[title="streamlit_flow.streamlit_flow"]'
ENDED = ("succeeded", "failed", "cancelled", "crashed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(home, tmp_path):
    """`taskloom serve` over a home with the hello example; yields the web app's URL."""
    done = taskloom(home, "import", str(ROOT / "assets" / "examples" / "hello.json"))
    assert done.returncode == 0, done.stderr
    ui_port, api_port = free_port(), free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [TASKLOOM, "serve", "--ui-port", str(ui_port), "--port", str(api_port), "--lease-ttl", "2"],
        env=env_for(home), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{ui_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"taskloom serve did not come up: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def page(served):
    executable = chromium_path()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def click_until(page, target, done, tries: int = 2, timeout: float = 10_000) -> None:
    """Click ``target`` and wait for ``done`` (a locator) to appear; click once more if the page re-rendered under it."""
    for attempt in range(tries):
        wait_idle(page)
        target.click()
        wait_idle(page)
        try:
            done.wait_for(timeout=timeout)
            return
        except playwright.TimeoutError:
            if attempt == tries - 1:
                raise


def go_to(page, title: str, ready) -> None:
    """Open a page of the app from the sidebar's navigation."""
    click_until(page, page.get_by_test_id("stSidebarNav").get_by_role("link", name=title), ready)


def test_run_now_then_read_a_task_log_on_the_runs_page(page, served, home):
    page.goto(served)
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").wait_for()
    shot(page, "runs-01-app")

    # Workflows: queue a run of hello
    run_now = page.locator(".st-key-wf_run_hello").get_by_role("button", name="Run now").first
    go_to(page, "Workflows", run_now)
    shot(page, "runs-02-workflows")
    click_until(page, run_now, page.get_by_text("of hello queued", exact=False).first)
    (run_id,) = wait_for(lambda: query(home, "SELECT id FROM runs WHERE workflow = 'hello' AND trigger = 'manual'"),
                         what="the queued run")[0]
    shot(page, "runs-03-queued")

    # Runs: the new run is in the table; open it from the run picker
    picker = page.locator(".st-key-runs_pick").first
    go_to(page, "Runs", picker)
    page.get_by_test_id("stDataFrame").first.wait_for()
    shot(page, "runs-04-table")
    option = page.get_by_role("option", name=f"run {run_id}", exact=True)
    click_until(page, picker, option)
    click_until(page, option, page.get_by_text(f"Run {run_id} · hello", exact=False).first)
    flow = page.frame_locator(FLOW)
    flow.locator('.react-flow__node[data-id="repeat"]').wait_for()
    shot(page, "runs-05-detail")

    # the scheduler runs it; then the page shows it ended
    status = wait_for(lambda: (s := query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0]) in ENDED and s,
                      timeout=90, what=f"run {run_id} to end")
    assert status == "succeeded", query(home, "SELECT task_id, status, error FROM task_states WHERE run_id = ?", run_id)
    refresh = page.locator(".st-key-runs_refresh button").first
    if refresh.count():
        click_until(page, refresh, page.locator(".st-key-runs_act_rerun button:not([disabled])").first)
    page.locator(".st-key-runs_act_rerun button:not([disabled])").first.wait_for()
    assert page.locator(".st-key-runs_refresh").count() == 0
    shot(page, "runs-06-ended")

    # a click on the graph's `repeat` node selects the task; its log shows the greetings
    node = flow.locator('.react-flow__node[data-id="repeat"]')
    click_until(page, node, page.get_by_text(re.compile(r"^repeat: .*attempt")).first)
    # the log grid draws on a canvas; its cells' text is in the grid's (visually hidden) accessible table
    cell = page.get_by_role("gridcell", name="hello world #1", exact=True, include_hidden=True)
    logs = page.get_by_test_id("stDataFrame").filter(has=cell)
    cell.first.wait_for(state="attached", timeout=15_000)
    assert logs.get_by_role("gridcell", name="hello world #3", exact=True, include_hidden=True).count() == 1
    logs.scroll_into_view_if_needed()
    assert logs.is_visible()
    shot(page, "runs-07-task-log")
    if os.environ.get("TASKLOOM_DOCS_SHOTS"):
        page.get_by_text("Log", exact=True).first.scroll_into_view_if_needed()
        wait_idle(page)
        page.screenshot(path=str(ROOT / "docs" / "images" / "run-detail.png"))
