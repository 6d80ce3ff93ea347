"""Keyset pages: following `next` cursors gives exactly the rows of the full sorted query, in order,
whichever query shape the inbox picks; `previous` cursors walk back through the same pages; a bad
cursor is refused; counts stop at their cap."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bench import dataset
from engine import Engine, FrozenClock, InvalidInputError
from engine.queries import tasks as inbox

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def eng(new_database) -> Iterator[Engine]:
    engine = Engine.create(new_database(), clock=FrozenClock(NOW))
    engine.init_db()
    dataset.fill(engine, 400)
    yield engine
    engine.dispose()


def walk(fetch, limit: int) -> tuple[list, list]:
    """Every page forwards, then backwards from the last one: (forward pages, backward pages)."""
    pages, cursor = [], None
    while True:
        page = fetch(limit=limit, after=cursor)
        pages.append([t.id if hasattr(t, "id") else t["id"] for t in page.items])
        if page.next is None:
            break
        cursor = page.next
    back, cursor = [pages[-1]], page.previous
    while cursor is not None:
        page = fetch(limit=limit, before=cursor)
        back.append([t.id if hasattr(t, "id") else t["id"] for t in page.items])
        cursor = page.previous
    return pages, list(reversed(back))


@pytest.mark.parametrize("sort", ["due", "created", "name", "process"])
@pytest.mark.parametrize("drive_limit", [0, 10_000])  # always walk the sort index / always sort the matches
def test_inbox_pages_follow_the_full_order(eng, sort, drive_limit, monkeypatch):
    monkeypatch.setattr(inbox, "DRIVE_LIMIT", drive_limit)
    expected = [t.id for t in eng.tasks.query(user=dataset.INBOX_USER, sort=sort)]
    assert len(expected) > 20
    pages, back = walk(lambda **kw: eng.tasks.page(user=dataset.INBOX_USER, sort=sort, **kw), 7)
    assert [i for p in pages for i in p] == expected
    assert all(len(p) == 7 for p in pages[:-1])
    assert back == pages
    assert eng.tasks.page(user=dataset.INBOX_USER, sort=sort, limit=7).total == len(expected)


def test_offset_pages_match_cursor_pages(eng):
    by_cursor = eng.tasks.page(user=dataset.INBOX_USER, limit=5)
    second = eng.tasks.page(user=dataset.INBOX_USER, limit=5, after=by_cursor.next)
    assert [t.id for t in eng.tasks.query(user=dataset.INBOX_USER, limit=5, offset=5)] == [t.id for t in second.items]


@pytest.mark.parametrize("filters", [{}, {"key": "henvendelse"}, {"status": "completed", "key": "henvendelse"},
                                     {"status": "active"}])
def test_case_list_pages_follow_the_full_order(eng, filters):
    expected = [r["id"] for r in eng.runtime.list(limit=1000, **filters)[0]]
    assert len(expected) > 15 and expected == sorted(expected, reverse=True)
    pages, back = walk(lambda **kw: eng.runtime.page(**filters, **kw), 9)
    assert [i for p in pages for i in p] == expected
    assert back == pages


@pytest.mark.parametrize("cursor", ["x", "eyJvIjogLTF9", "WzAsWyJ4Il1d", "W1swXV0", "WzksWzFdXQ"])
def test_a_bad_cursor_is_refused(eng, cursor):
    with pytest.raises(InvalidInputError):
        eng.tasks.page(user=dataset.INBOX_USER, limit=5, after=cursor)
    with pytest.raises(InvalidInputError):
        eng.runtime.page(limit=5, after=cursor)


def test_counts_stop_at_their_cap(eng):
    total = eng.tasks.count(status="all")
    assert total > 50
    assert eng.tasks.count(status="all", cap=50) == 51
    assert eng.runtime.list(limit=1)[1] == eng.runtime.page(limit=1).total > 400 - 1
    with pytest.raises(InvalidInputError):
        eng.runtime.page(limit=5, offset=10_001)
