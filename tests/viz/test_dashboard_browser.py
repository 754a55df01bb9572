"""The dashboard in a real browser: `adlgame dashboard` served on a free local port, driven by
headless Chromium through Playwright (change the policy, step, see a plot change, take a
screenshot that is not blank).

Chromium is Debian's (/usr/bin/chromium, installed by `make test`); Playwright never
downloads its own browser.  The page must load with every asset served by the local server
(no CDN): any failed request fails the test.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # seconds until the server answers HTTP
UI_TIMEOUT_MS = 30_000  # per browser wait

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(
        f"the dashboard did not answer {url} within {START_TIMEOUT:.0f} s:\n{log.read_text()}"
    )


@pytest.fixture
def server(tmp_path):
    """`python -m viz.cli dashboard --port P` in its own process group; killed at teardown."""
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "viz.cli", "dashboard", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_http(url, proc, log)
        yield url, log
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def _shot(locator, tries: int = 10) -> bytes:
    """A screenshot of ``locator``'s element, taken again when the page replaced the element
    while it was being taken (Solara re-renders an image after Reset and Step: Playwright
    then reports it "not attached to the DOM"; the locator finds the new one next time)."""
    for i in range(tries):
        try:
            return locator.screenshot()
        except Exception as exc:  # playwright's Error: only the detached-element race
            if "not attached to the DOM" not in str(exc) or i == tries - 1:
                raise
            time.sleep(0.3)
    raise AssertionError("unreachable")  # pragma: no cover


def test_dashboard_in_chromium(server, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev dependencies bring it
        pytest.fail("playwright is not installed: run `make test` (it installs the dev extras)")

    url, log = server
    assert "adlgame dashboard: serving http://127.0.0.1:" in log.read_text()
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
            page.on(
                "response",
                lambda r: problems.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
            )
            page.goto(url)
            status = page.locator(".adl-status")
            status.wait_for()
            assert status.inner_text().startswith("Policy hyperliquid · severity full · step 0 /")
            price = page.locator(".vue-grid-item img").first
            price.wait_for()
            assert page.locator(".vue-grid-item img").count() == 6

            # change the policy, then Reset builds a game with it (Mesa's convention)
            page.locator(".v-select").filter(has_text="ADL policy").click()
            page.get_by_role("option", name="pro_rata", exact=True).click()
            page.get_by_role("button", name="Reset").click()
            page.get_by_text("Policy pro_rata · severity full · step 0 /").wait_for()
            before = _shot(price)

            for k in range(1, 4):
                page.get_by_role("button", name="Step").click()
                page.get_by_text(f"Policy pro_rata · severity full · step {k} /").wait_for()
            page.get_by_text("Step: 3").wait_for()

            deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
            after = _shot(price)
            while after == before and time.monotonic() < deadline:
                time.sleep(0.3)  # the image may land a moment after the status text
                after = _shot(price)
            assert after != before, "the price plot did not change after three steps"
            a, b = _pixels(before), _pixels(after)
            if a.shape == b.shape:
                assert np.abs(a - b).max() > 50  # a real redraw, not anti-aliasing noise

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    img = _pixels(shot.read_bytes())
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    colours = np.unique(img.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50, f"screenshot {shot} looks blank ({len(colours)} colours)"
    assert img.std() > 20, f"screenshot {shot} looks blank (pixel std {img.std():.1f})"
    # dark pixels: text and plot lines; the page is not an empty white sheet
    assert (img.mean(axis=2) < 100).mean() > 0.005
    assert not problems, "requests failed (the page must work offline):\n" + "\n".join(problems)


def test_two_rules_side_by_side_in_chromium(server):
    # a designer's draft against a venue's rule: same world, two columns, the step they part
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.set_default_timeout(3 * UI_TIMEOUT_MS)  # two games render per step
            page.goto(url)
            page.locator(".adl-status").wait_for()
            box = page.locator(".v-text-field").filter(has_text="Compare with").locator("input")
            status = page.get_by_text("Policy hyperliquid vs pro_rata · severity full · step 0 /")
            for _ in range(6):  # under load a re-render may drop the typed value: type again
                box.fill("pro_rata")
                box.press("Enter")
                box.blur()  # the text box applies its value on Enter or blur
                page.get_by_role("button", name="Reset").click()
                try:
                    status.wait_for(timeout=15_000)
                    break
                except Exception:
                    continue
            status.wait_for()
            assert "have not parted yet" in page.locator(".adl-parted").inner_text()
            assert page.locator(".adl-side-a").inner_text().startswith("hyperliquid: ADL raised")
            assert page.locator(".adl-side-b").inner_text().startswith("pro_rata: ADL raised")
            parted = page.locator(".adl-parted")
            page.get_by_role("button", name="Step").click()  # one step by hand
            page.get_by_text("vs pro_rata · severity full · step 1 /").wait_for()
            page.get_by_role("button", name="▶").click()  # play on to the first ADL wave
            page.get_by_text("The two rules part at step").wait_for(timeout=180_000)
            page.get_by_role("button", name="❚❚").click()
            text = parted.inner_text()
            step = int(text.split("part at step ")[1].split(":")[0])
            assert step > 0
            a = page.locator(".adl-side-a").inner_text()
            b = page.locator(".adl-side-b").inner_text()
            assert a != b  # what each rule did differs once they part
            assert page.locator("img").count() >= 8  # six plots and two who-paid charts
        finally:
            browser.close()
