"""The built website opened from disk: math typesets and no page talks to another host."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.book, pytest.mark.browser]


def _is_redirect(path) -> bool:
    return 'http-equiv="Refresh"' in path.read_text(encoding="utf-8")[:2000]


def _pages(built_book):
    return sorted(p for p in built_book.rglob("*.html")
                  if "_static" not in p.parts and not _is_redirect(p))


def test_root_index_redirects_to_the_title_page(built_book, offline_page):
    page = offline_page.open(built_book / "index.html")
    page.wait_for_url("**/chapters/index.html", timeout=10_000)
    assert offline_page.external_requests == []


def test_every_page_is_offline_and_typesets_its_math(built_book, offline_page):
    pages = _pages(built_book)
    assert len(pages) >= 7
    for path in pages:
        page = offline_page.open(path)
        has_math = page.locator(".math").count() > 0
        if has_math:
            page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
            assert page.locator("mjx-container").count() >= page.locator(".math").count(), path
        assert offline_page.external_requests == [], f"{path.name} requested other hosts"
        assert offline_page.page_errors == [], f"{path.name}: {offline_page.page_errors}"


def test_title_page_has_math_and_it_is_typeset(built_book, offline_page):
    page = offline_page.open(built_book / "chapters" / "index.html")
    page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    assert page.locator("mjx-container").count() >= 3


def test_search_works_offline(built_book, offline_page):
    page = offline_page.open(built_book / "search.html")
    page.goto(page.url + "?q=reparameterization")
    page.wait_for_selector("#search-results li", timeout=20_000)
    assert page.locator("#search-results li").count() >= 1
    assert offline_page.external_requests == []
