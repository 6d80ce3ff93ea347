"""camunda:historyTimeToLive: how many days the history of an ended instance is kept.

Camunda 7 accepts a whole number of days ("180") or an ISO 8601 duration in days only ("P180D");
an empty value means no time to live (kept for ever). Anything else is refused at deploy.
"""

from __future__ import annotations

import re

# Bounded so that "now minus the TTL" stays a valid date (datetime cannot go before year 1).
MAX_HISTORY_TTL_DAYS = 365_000
_DAYS = re.compile(r"^(?:P(\d+)D|(\d+))$")


class HistoryTtlError(ValueError):
    pass


def parse_history_ttl(value: str | None) -> int | None:
    """Days to keep an ended instance, or None when the process sets no time to live."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    m = _DAYS.match(text)
    if m is None:
        raise HistoryTtlError(f"camunda:historyTimeToLive '{text}' must be a number of days, e.g. '3650' or "
                              "'P3650D' (other durations and expressions are not supported)")
    days = int(m.group(1) or m.group(2))
    if days > MAX_HISTORY_TTL_DAYS:
        raise HistoryTtlError(f"camunda:historyTimeToLive '{text}' is more than {MAX_HISTORY_TTL_DAYS} days")
    return days
