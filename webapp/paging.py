"""Paging for list pages: ?page=N, a fixed page size, and what the template needs to link pages."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request


@dataclass
class Page:
    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def current_page(total: int = 0) -> Page:
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        number = 1
    return Page(number, int(current_app.config["ALMENFLOW_PAGE_SIZE"]), total)
