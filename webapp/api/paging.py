"""The paging members of a list response (PageSchema)."""

from __future__ import annotations

from typing import Any

from engine.queries.paging import COUNT_CAP


def page_fields(result: Any, query: dict[str, Any]) -> dict[str, Any]:
    """total (capped), total_exact, limit, offset and the next page's cursor of an engine page."""
    return {"total": min(result.total, COUNT_CAP), "total_exact": result.total <= COUNT_CAP,
            "limit": query["limit"], "offset": query["offset"], "next": result.next}
