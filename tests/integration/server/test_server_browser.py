"""The web page of `shortlist serve` in a real headless Chromium (Debian's `chromium`, driven by Playwright): embed,
compare two texts and move the threshold slider, search, and score an uploaded CSV file and download it."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shortlist import Encoder

if TYPE_CHECKING:
    from .conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
OUTPUT = Path(__file__).resolve().parents[3] / "test-output"

_MISSING = not Path(CHROMIUM).exists() and shutil.which("chromium") is None
if _MISSING and os.environ.get("CI"):  # `make test` installs it; in CI a missing browser is a failure, not a skip
    pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install -y chromium)", pytrace=False)
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(_MISSING, reason="Debian's chromium is not installed: apt-get install -y chromium")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live: LiveServer):  # type: ignore[no-untyped-def]
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(live.url + "/")
    sync_api.expect(pg.locator("#status")).to_contain_text("all-MiniLM-L6-v2")
    yield pg
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_similarity_slider_embed_search_and_csv(page, encoder: Encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    expect = sync_api.expect
    a, b = "How do I reset my password?", "I forgot my login credentials."
    want = encoder.similarity(a, b)

    # An empty text is refused with the server's message.
    page.fill("#sim-b", "   ")
    page.click("#sim-btn")
    expect(page.locator("#sim-error")).to_contain_text("text2 is empty")
    expect(page.locator("#verdict")).to_have_text("not compared yet")

    # Two texts, compare, then move the slider across the score: the verdict flips and changes colour.
    page.fill("#sim-a", a)
    page.fill("#sim-b", b)
    page.click("#sim-btn")
    expect(page.locator("#sim-score")).to_have_text(f"{want:.4f}")
    expect(page.locator("#sim-error")).to_have_text("")
    page.locator("#threshold").fill(f"{max(want - 0.1, -1):.2f}")
    expect(page.locator("#verdict")).to_have_text("match")
    expect(page.locator("#verdict")).to_have_class("match")
    green = page.locator("#verdict").evaluate("e => getComputedStyle(e).backgroundColor")
    page.locator("#threshold").fill(f"{min(want + 0.1, 1):.2f}")
    expect(page.locator("#verdict")).to_have_text("no match")
    expect(page.locator("#verdict")).to_have_class("no-match")
    red = page.locator("#verdict").evaluate("e => getComputedStyle(e).backgroundColor")
    assert green != red
    # Keyboard on the slider (a user's arrow keys), back under the score.
    page.locator("#threshold").fill("0.90")
    page.locator("#threshold").focus()
    steps = round((0.90 - (want - 0.05)) / 0.01)
    for _ in range(steps):
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#verdict")).to_have_text("match")

    # Embed a text: dimension and first values.
    page.fill("#embed-text", "The quick brown fox.")
    page.click("#embed-btn")
    expect(page.locator("#embed-meta")).to_contain_text("dimension 384")
    first = encoder.embed_documents(["The quick brown fox."])[0][:2]
    expect(page.locator("#embed-out")).to_contain_text(f"[{first[0]:.5f}, {first[1]:.5f},")

    # Search the collection.
    page.fill("#search-q", "Do cats sleep a lot?")
    page.press("#search-q", "Enter")
    expect(page.locator("#search-out .hit").first).to_contain_text("Cats sleep")

    # Upload a CSV of pairs; get the scored file.
    pairs = [("A cat sat on the mat.", "A kitten rested on the rug."), ("Stocks fell.", "Bananas are yellow.")]
    src = tmp_path / "pairs.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text1", "text2"), *pairs])
    page.locator("#threshold").fill("0.50")
    page.set_input_files("#csv-file", str(src))
    page.click("#csv-btn")
    expect(page.locator("#csv-download")).to_be_visible()
    expect(page.locator("#csv-out tbody tr")).to_have_count(2)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "server-page.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#csv-download")
    download = info.value
    assert download.suggested_filename == "pairs-scored.csv"
    saved = OUTPUT / "server-pairs-scored.csv"
    download.save_as(str(saved))
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert rows[0] == ["text1", "text2", "similarity", "match"]
    for (x, y), row in zip(pairs, rows[1:], strict=True):
        assert row[:2] == [x, y]
        assert float(row[2]) == pytest.approx(encoder.similarity(x, y), abs=2e-6)
        assert row[3] == ("yes" if float(row[2]) >= 0.5 else "no")


# ---------------------------------------------------------------------------------------------- /docs, /redoc offline
@pytest.fixture
def offline_context(browser, live: LiveServer):  # type: ignore[no-untyped-def]
    """A browser context that can reach only the test server: any other request is recorded and aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def guard(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if url.startswith(live.url + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", guard)
    yield context, outside
    context.close()


def test_docs_renders_the_operations_from_the_server_alone(offline_context, live: LiveServer) -> None:  # type: ignore[no-untyped-def]
    context, outside = offline_context
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.url + "/docs")
    search = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/search"))
    sync_api.expect(search).to_have_count(1)
    sync_api.expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 8  # every API route, not a blank page
    search.locator(".opblock-summary").click()  # an operation opens, with its request body schema
    sync_api.expect(search.locator(".opblock-body")).to_contain_text("query")
    page.goto(live.url + "/redoc")
    sync_api.expect(page.get_by_text("/api/search").first).to_be_attached()
    assert outside == [], f"the docs pages asked for files elsewhere: {outside}"
    assert errors == [], f"JavaScript errors on the docs pages: {errors}"
