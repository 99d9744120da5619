"""A new user in a real browser: builds a workflow on an empty canvas, saves, exports, reloads.

`taskloom ui` serves the app on a free loopback port; Playwright drives Debian's
chromium (installed by .ci/run). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import socket

import pytest

from browser import CHROMIUM_ARGS, chromium_path, serve_app, shot, wait_idle
from clitools import query

playwright = pytest.importorskip("playwright.sync_api")

FLOW = 'iframe[title="streamlit_flow.streamlit_flow"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(home):
    port = free_port()
    proc = serve_app(home, port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def page(app):
    executable = chromium_path()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def open_app(page, url: str) -> None:
    """Load the app and wait for its first render to settle (the canvas is the last thing to mount)."""
    page.goto(url)
    page.frame_locator(FLOW).locator(".react-flow__pane").wait_for()
    wait_idle(page)


def click_key(page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()
    wait_idle(page)


def add_from_palette(page, task_type: str, node_id: str) -> None:
    """Click a palette entry until its node is on the canvas (a click can land while the page re-renders)."""
    node = page.frame_locator(FLOW).locator(f'.react-flow__node[data-id="{node_id}"]')
    for _ in range(3):
        click_key(page, f"designer_add_{task_type}")
        try:
            node.wait_for(timeout=8_000)
            wait_idle(page)
            return
        except playwright.TimeoutError:
            continue
    node.wait_for(timeout=1_000)


def center(box: dict) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_build_save_export_and_reload_a_workflow(page, app, home, tmp_path):
    open_app(page, app)
    flow = page.frame_locator(FLOW)
    # two nodes from the palette
    add_from_palette(page, "shell", "shell_1")
    add_from_palette(page, "noop", "noop_1")
    shot(page, "01-two-nodes")
    # connect them by dragging from one handle to the other
    source = flow.locator('.react-flow__node[data-id="shell_1"] .react-flow__handle.source').bounding_box()
    target = flow.locator('.react-flow__node[data-id="noop_1"] .react-flow__handle.target').bounding_box()
    page.mouse.move(*center(source))
    page.mouse.down()
    page.mouse.move(*center(target), steps=12)
    page.mouse.up()
    wait_idle(page)
    flow.locator(".react-flow__edge").first.wait_for()
    shot(page, "02-connected")
    # fill a parameter in the inspector
    flow.locator('.react-flow__node[data-id="shell_1"]').click()
    wait_idle(page)
    command = page.get_by_label("Command", exact=False).first
    command.fill("echo hello from the browser")
    command.press("Tab")
    wait_idle(page)
    shot(page, "03-inspector")
    # save, then export
    click_key(page, "designer_save")
    page.get_by_text("version 1", exact=False).first.wait_for()
    with page.expect_download() as download:
        page.locator(".st-key-designer_export button").click()
    exported = json.loads(open(download.value.path()).read())
    shot(page, "04-saved")
    tasks = {t["id"]: t for t in exported["tasks"]}
    assert tasks["shell_1"]["params"]["command"] == "echo hello from the browser"
    assert tasks["noop_1"]["type"] == "noop"
    assert [(e["from"], e["to"], e.get("on", "success")) for e in exported["edges"]] == [("shell_1", "noop_1", "success")]
    stored = query(home, "SELECT name, current_version FROM workflows")
    assert stored == [(exported["name"], 1)]
    # a fresh page load finds the graph as it was
    open_app(page, app)
    page.locator(".st-key-designer_open_pick").click()
    page.get_by_role("option", name=exported["name"]).click()
    wait_idle(page)
    click_key(page, "designer_open_btn")
    flow.locator('.react-flow__node[data-id="shell_1"]').wait_for()
    flow.locator('.react-flow__node[data-id="noop_1"]').wait_for()
    assert flow.locator(".react-flow__edge").count() == 1
    shot(page, "05-reloaded")
