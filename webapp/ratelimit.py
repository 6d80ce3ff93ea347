"""A small in-process limiter for failed logins (per username+IP, and per IP across usernames).

One process keeps its own counts; behind several processes each counts alone, which still bounds
guessing to N x limit per window. Nothing here needs a dependency or a shared store."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginRateLimiter:
    def __init__(self, attempts: int = 5, window_seconds: float = 300, per_ip_attempts: int = 50,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self.per_ip_attempts = per_ip_attempts
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, ip: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (username.strip().lower(), ip), ("", ip)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, username: str, ip: str) -> int:
        """Seconds until a new attempt is allowed; 0 when it is allowed now."""
        now = self._clock()
        user_key, ip_key = self._keys(username, ip)
        with self._lock:
            waits = []
            for key, limit in ((user_key, self.attempts), (ip_key, self.per_ip_attempts)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[-limit] + self.window - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, username: str, ip: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:
                self._prune(now)
            for key in self._keys(username, ip):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, ip: str) -> None:
        user_key, _ = self._keys(username, ip)
        with self._lock:
            self._failures.pop(user_key, None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        if len(self._failures) >= self._max_keys:  # still full of live keys: forget the oldest half
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]
