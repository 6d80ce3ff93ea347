"""Paging for list pages: a fixed page size, next/previous links carrying a cursor, and the page number.

The engine pages with cursors (engine/queries/paging.py): a link to the next page carries `after`
(the last row's sort keys), one to the previous page `before`, so a deep page costs what the first
costs. `page` is carried along for the "Page 3 of 170" label; a link with only `page` (an old bookmark)
still works while its offset is small (MAX_OFFSET), deeper ones start again at page 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, request

from engine.queries.paging import COUNT_CAP, MAX_OFFSET


@dataclass
class Page:
    number: int
    size: int
    total: int
    after: str | None = None
    before: str | None = None
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @property
    def offset(self) -> int:
        """Rows to skip: only for a page asked for by number alone."""
        if self.after or self.before:
            return 0
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, COUNT_CAP) // self.size))

    @property
    def total_known(self) -> bool:
        """False when there are more than COUNT_CAP matches (counting stopped there)."""
        return self.total <= COUNT_CAP

    @property
    def cap(self) -> int:
        return COUNT_CAP

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def cursors(self) -> dict[str, Any]:
        """Keyword arguments for the engine's page(): the cursor, or the offset of a numbered page."""
        return {"after": self.after, "before": self.before, "offset": self.offset}

    def fill(self, result: Any) -> Page:
        """Take the engine page's cursors (and count) for the links."""
        self.next_cursor, self.prev_cursor = result.next, result.previous
        if result.total is not None:
            self.total = result.total
        return self


def current_page(total: int = 0) -> Page:
    size = int(current_app.config["ALMENFLOW_PAGE_SIZE"])
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        number = 1
    after = request.args.get("after") or None
    before = None if after else (request.args.get("before") or None)
    if not after and not before and (number - 1) * size > MAX_OFFSET:
        number = 1
    return Page(number, size, total, after, before)
