"""Successful password checks, remembered for a few minutes so HTTP Basic does not pay argon2 on
every request.

An entry is keyed by HMAC-SHA256(per-process random key, username + password): neither the
password nor a hash anyone could test guesses against outside this process is kept. The value is
the user's stored password hash at the time of the check; the caller compares it with the hash it
reads anyway, so a password changed anywhere (any process) misses at once. Role, active flag and
forums are read fresh on every request, never from here. The cache is bounded (least recently used
entries go first) and entries expire after `ttl_seconds`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class CredentialCache:
    def __init__(self, ttl_seconds: float = 300.0, max_entries: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[str, str, float]] = OrderedDict()  # key -> (user, hash, expiry)
        self._lock = threading.Lock()

    def _key(self, username: str, password: str) -> bytes:
        # Length-prefixed so ("ab", "c") and ("a", "bc") never share a key.
        message = f"{len(username)}:{username}:{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def matches(self, username: str, password: str, password_hash: str) -> bool:
        """True when this exact username and password were verified against `password_hash` within the TTL."""
        key = self._key(username, password)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            user, stored_hash, expires = entry
            if expires <= now or user != username or not hmac.compare_digest(stored_hash, password_hash):
                del self._entries[key]
                return False
            self._entries.move_to_end(key)
            return True

    def remember(self, username: str, password: str, password_hash: str) -> None:
        """Record a successful argon2 verification of `password` against `password_hash`."""
        key = self._key(username, password)
        with self._lock:
            self._entries[key] = (username, password_hash, self._clock() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, username: str) -> None:
        """Forget every entry of one user (their password, role or active flag changed here)."""
        with self._lock:
            for key in [k for k, (user, _, _) in self._entries.items() if user == username]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
