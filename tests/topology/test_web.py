"""The gateway's web pages in a real browser: Debian's headless Chromium driven by Playwright.

A person browses a category, opens a book, lends it, returns it, looks up a user and lists overdue loans;
refused actions (an unknown user, no copy left) are shown on the page with the reason. Playwright drives the
installed /usr/bin/chromium; no browser is downloaded. `UPDATE_DOCS_SCREENSHOT=1` also writes the books
page to docs/gateway-books.png.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.topology.conftest import FIXED_CLOCK
from topology.launch import SplitTopology, start_split

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package `chromium`, listed in deps/apt-packages.txt)",
)
REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


@pytest.fixture(scope="module")
def site() -> Iterator[SplitTopology]:
    topology = start_split("grpc", dataset="small", clock=FIXED_CLOCK)
    yield topology
    topology.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright.Browser]:
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: playwright.Browser, site: SplitTopology) -> Iterator[playwright.Page]:
    context = browser.new_context(base_url=f"http://{site.address}", viewport={"width": 1100, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def test_browse_lend_and_return(page: playwright.Page) -> None:
    page.goto("/ui/")
    page.get_by_role("link", name="size-100", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Books in “size-100”"
    rows = page.locator("tbody tr")
    assert rows.count() == 100
    first_title = rows.nth(0).locator("td").nth(1).inner_text()
    rows.nth(0).get_by_role("link").click()
    assert page.get_by_role("heading", level=1).inner_text() == first_title
    copies_before = page.locator("#copies").inner_text()

    page.get_by_label("User id").fill("7")
    page.get_by_role("button", name="Lend").click()
    page.wait_for_url("**/ui/loans/*")
    assert page.locator("#status").inner_text() == "ACTIVE"
    loan_url = page.url
    page.get_by_role("link", name=re.compile(r"^book \d+$")).click()
    copies_lent = page.locator("#copies").inner_text()
    assert int(copies_lent.split()[0]) == int(copies_before.split()[0]) - 1

    page.goto(loan_url)
    page.get_by_role("button", name="Return the copy").click()
    assert page.get_by_role("status").inner_text() == "The copy was returned."
    assert page.locator("#status").inner_text() == "RETURNED"
    assert page.get_by_role("button", name="Return the copy").count() == 0


def test_sending_the_lend_form_twice_lends_once(page: playwright.Page, site: SplitTopology) -> None:
    page.goto("/ui/books/5")
    page.get_by_label("User id").fill("3")
    page.get_by_role("button", name="Lend").click()
    page.wait_for_url("**/ui/loans/*")
    first = page.url
    page.go_back()  # the same form, with the key it was drawn with
    page.get_by_role("button", name="Lend").click()
    page.wait_for_url("**/ui/loans/*")
    assert page.url == first


def test_unknown_user_is_shown_to_the_person(page: playwright.Page) -> None:
    page.goto("/ui/books/2")
    page.get_by_label("User id").fill("999999")
    with page.expect_response(lambda r: r.url.endswith("/ui/loans")) as answer:
        page.get_by_role("button", name="Lend").click()
    assert answer.value.status == 404
    assert page.get_by_role("alert").inner_text() == "user 999999 not found"
    assert page.get_by_label("User id").input_value() == "999999", "the form keeps what was typed"

    page.goto("/ui/users?id=424242")
    assert page.get_by_role("alert").inner_text() == "user 424242 not found"
    page.get_by_label("User id").fill("1")
    page.get_by_role("button", name="Look up").click()
    assert "user1@example.org" in page.content()


def test_no_copy_available_is_shown_to_the_person(page: playwright.Page, site: SplitTopology) -> None:
    book = {"isbn": "9780306406157", "title": "Only One", "author": "A", "category": "web", "year": 2000}
    created = httpx.post(f"http://{site.address}/books", json={**book, "copies": 1}).json()
    page.goto(f"/ui/books/{created['id']}")
    page.get_by_label("User id").fill("1")
    page.get_by_role("button", name="Lend").click()
    page.wait_for_url("**/ui/loans/*")
    page.goto(f"/ui/books/{created['id']}")
    assert page.locator("#copies").inner_text() == "0 of 1 available"
    page.get_by_label("User id").fill("2")
    with page.expect_response(lambda r: r.url.endswith("/ui/loans")) as answer:
        page.get_by_role("button", name="Lend").click()
    assert answer.value.status == 409
    assert page.get_by_role("alert").inner_text() == f"book {created['id']} has no copy available"


def test_overdue_loans_and_a_bad_category(page: playwright.Page) -> None:
    page.goto("/ui/")
    page.get_by_role("link", name="Overdue loans").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Overdue loans"
    assert page.locator("tbody tr").count() > 10
    page.locator("tbody tr").first.get_by_role("link").first.click()
    assert page.locator("#status").inner_text() == "OVERDUE"
    page.goto("/ui/books?category=" + "c" * 65)
    assert "category is 65 characters long" in page.get_by_role("alert").inner_text()


def test_books_page_screenshot(page: playwright.Page, tmp_path: Path) -> None:
    page.goto("/ui/books?category=size-100")
    shot = tmp_path / "gateway-books.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1100, "height": 640})
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "gateway-books.png")


def test_numbers_no_backend_protocol_can_carry_are_refused_on_the_page(page: playwright.Page) -> None:
    response = page.goto("/ui/books/9999999999999999999")  # beyond int64: a gRPC backend could not take it
    assert response is not None and response.status == 400
    assert "book_id must be a positive integer" in page.get_by_role("alert").inner_text()
    response = page.goto("/ui/users?id=%C2%B2")  # "²" is a digit to str.isdigit, not to int()
    assert response is not None and response.status == 400
    assert "user id must be a whole number" in page.get_by_role("alert").inner_text()
    page.goto("/ui/books/2")
    page.get_by_label("User id").fill("1")
    page.get_by_label("Days").fill("99999999999")
    page.get_by_role("button", name="Lend").click()
    assert page.get_by_role("alert").inner_text() == "days must be between 1 and 365, got 99999999999"
