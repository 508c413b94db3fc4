"""The HTML posture report in a real browser (headless Chromium, driven by Playwright): it uses the width
of the page without overflowing it, shows each framework and what could not be evaluated, names
resources by name and resource group with the full id on hover, and runs no script from the data.

Chromium is Debian's (.ci/run installs it); Playwright drives it from PyPI's package, no download.
"""
from __future__ import annotations

import os
import shutil
import struct

import pytest

from shared.report import build_report, render_html
from tests.test_report import HISTORY, NOW, ST_PAY, catalog, estate  # noqa: F401 (catalog: a fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("Chromium is missing: .ci/run installs Debian's chromium package")
    pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")

VIEWPORT = {"width": 1400, "height": 900}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(catalog, tmp_path_factory):
    report = build_report(estate(catalog), catalog, NOW, HISTORY)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        yield page
        browser.close()


def test_the_page_uses_the_width_and_never_scrolls_sideways(page, tmp_path):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"the page is {width} px wide in a {VIEWPORT['width']} px window"
    main = page.evaluate("document.querySelector('main').getBoundingClientRect().width")
    assert main >= 0.9 * VIEWPORT["width"], f"the content uses {main:.0f} of {VIEWPORT['width']} px"
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    shot_width, shot_height = struct.unpack(">II", png[16:24])
    assert shot_width == VIEWPORT["width"] and 900 < shot_height < 20000, (shot_width, shot_height)


def test_no_script_from_the_data_runs(page):
    """Tag values and resource names hold <script> and an <img onerror>: shown as text, never run."""
    assert page.dialogs == []
    assert page.evaluate("document.querySelectorAll('script, img, iframe, object').length") == 0
    text = page.inner_text("body")
    assert "<script>alert(1)</script>" in text  # the hostile tag value is there, as text


def test_frameworks_not_evaluated_and_controls_that_applied_are_shown(page):
    headings = page.eval_on_selector_all("h2, h3", "els => els.map(e => e.textContent)")
    assert "By framework" in headings and any(h.startswith("CIS Microsoft Azure Foundations Benchmark") for h in headings)
    assert any(h.startswith("Not evaluated (") for h in headings)
    meta = page.inner_text(".meta")
    assert "controls applied (of" in meta and "in the catalog)" in meta


def test_a_resource_is_named_by_name_and_group_with_the_full_id_on_hover(page):
    cell = page.locator(f"strong[title='{ST_PAY}']").first
    assert cell.inner_text() == "stpay01"
    group = page.locator(f"div.rid[title='{ST_PAY}']").first.inner_text()
    assert group.startswith("rg-pay")
    box = page.locator(f"div.rid[title='{ST_PAY}']").first.bounding_box()
    assert box["height"] < 40  # one line or two, not an id broken character by character
