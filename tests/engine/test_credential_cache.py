"""HTTP Basic's credential cache: argon2 runs once per (username, password) within the TTL, never
again until the entry expires, the password changes (here or in another process) or the user's
role or active flag changes; the cache is bounded and keeps no password."""

from __future__ import annotations

import threading
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

import engine.services.identity as identity
from engine import Engine, Limits
from engine.credential_cache import CredentialCache
from engine.models import User

PASSWORD = "hemmeligt-1"


class CountingHasher(PasswordHasher):
    """The real argon2 hasher (cheap parameters), counting verifications and how many run at once."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifies = 0
        self.delay = delay
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):  # noqa: A002 (argon2's own parameter name)
        with self._lock:
            self.verifies += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.delay)
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    h = CountingHasher()
    monkeypatch.setattr(identity, "_hasher", h)
    return h


@pytest.fixture
def eng(engine, hasher) -> Engine:
    engine.identity.update_user("anna", password=PASSWORD)
    engine.identity.update_user("bo", password=PASSWORD)
    return engine


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_second_check_does_not_run_argon2(eng, hasher):
    assert eng.identity.verify_password("anna", PASSWORD, cached=True)["username"] == "anna"
    assert hasher.verifies == 1
    for _ in range(5):
        assert eng.identity.verify_password("anna", PASSWORD, cached=True)["username"] == "anna"
    assert hasher.verifies == 1


def test_without_cached_every_check_runs_argon2(eng, hasher):
    """The login form checks the password each time (it makes a session once)."""
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    eng.identity.verify_password("anna", PASSWORD)
    eng.identity.verify_password("anna", PASSWORD)
    assert hasher.verifies == 3


def test_wrong_passwords_are_never_cached(eng, hasher):
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    for _ in range(3):
        assert eng.identity.verify_password("anna", "forkert-kode", cached=True) is None
    assert hasher.verifies == 4
    assert eng.identity.verify_password("bo", PASSWORD, cached=True)["username"] == "bo"  # bo's own entry
    assert hasher.verifies == 5


def test_an_entry_expires_after_the_ttl(eng, hasher):
    fake = FakeTime()
    eng.identity.credentials = CredentialCache(ttl_seconds=300, clock=fake)
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    fake.now += 299
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    assert hasher.verifies == 1
    fake.now += 2
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    assert hasher.verifies == 2


def test_a_password_changed_here_takes_effect_at_once(eng, hasher):
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    eng.identity.update_user("anna", password="nyt-kodeord-2")
    assert len(eng.identity.credentials) == 0
    assert eng.identity.verify_password("anna", PASSWORD, cached=True) is None
    assert eng.identity.verify_password("anna", "nyt-kodeord-2", cached=True)["username"] == "anna"


def test_a_hash_changed_behind_the_caches_back_misses(eng, hasher, make_engine):
    """Another process sets the same password again (a new salt, so a new hash): this process's
    entry no longer matches the stored hash, so argon2 runs again (and succeeds)."""
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    other = make_engine()  # another engine on the same database: its own cache
    other.identity.update_user("anna", password=PASSWORD)
    assert len(eng.identity.credentials) == 1  # this process was not told
    assert eng.identity.verify_password("anna", PASSWORD, cached=True)["username"] == "anna"
    assert hasher.verifies == 2
    assert eng.identity.verify_password("anna", PASSWORD, cached=True)["username"] == "anna"
    assert hasher.verifies == 2  # and the new hash is cached


def test_a_password_changed_elsewhere_refuses_the_old_one_at_once(eng, hasher):
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    with eng.db.transaction() as s:  # as another process (or an operator with SQL) would
        s.execute(update(User).where(User.username == "anna").values(password_hash=hasher.hash("andet-kodeord")))
    assert eng.identity.verify_password("anna", PASSWORD, cached=True) is None


def test_deactivation_and_role_changes_take_effect_at_once_even_from_another_process(eng, hasher, make_engine):
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    other = make_engine()
    other.identity.update_user("anna", role="admin")
    assert eng.identity.verify_password("anna", PASSWORD, cached=True)["role"] == "admin"
    other.identity.update_user("anna", active=False)
    assert eng.identity.verify_password("anna", PASSWORD, cached=True) is None
    assert hasher.verifies == 1  # role and active come from the row, not from the cache


def test_role_and_active_changes_here_drop_the_users_entries(eng):
    eng.identity.verify_password("anna", PASSWORD, cached=True)
    eng.identity.verify_password("bo", PASSWORD, cached=True)
    eng.identity.update_user("anna", role="owner")
    assert len(eng.identity.credentials) == 1
    eng.identity.update_user("bo", active=False)
    assert len(eng.identity.credentials) == 0


def test_the_cache_is_bounded_least_recently_used_first():
    cache = CredentialCache(ttl_seconds=300, max_entries=3)
    for i in range(3):
        cache.remember(f"u{i}", "pw", "hash")
    assert cache.matches("u0", "pw", "hash")  # u0 is now the most recently used
    cache.remember("u3", "pw", "hash")
    assert len(cache) == 3
    assert not cache.matches("u1", "pw", "hash")  # the least recently used went
    assert all(cache.matches(u, "pw", "hash") for u in ("u0", "u2", "u3"))


def test_the_cache_keeps_no_password_and_separates_username_from_password():
    cache = CredentialCache()
    cache.remember("anna", "hemmeligt-1", "$argon2id$stored")
    stored = repr(cache._entries)
    assert "hemmeligt-1" not in stored and "hemmeligt" not in stored
    assert cache.matches("anna", "hemmeligt-1", "$argon2id$stored")
    assert not cache.matches("anna", "hemmeligt-2", "$argon2id$stored")
    assert not cache.matches("annah", "emmeligt-1", "$argon2id$stored")
    assert not CredentialCache().matches("anna", "hemmeligt-1", "$argon2id$stored")  # a key per process


def test_the_limits_set_ttl_and_size(make_engine):
    eng = make_engine(limits=Limits.from_env(credential_cache_seconds=7, credential_cache_entries=11))
    assert eng.identity.credentials.ttl == 7 and eng.identity.credentials.max_entries == 11


def test_argon2_checks_run_at_most_password_hash_concurrency_at_once(make_engine, monkeypatch):
    slow = CountingHasher(delay=0.05)
    monkeypatch.setattr(identity, "_hasher", slow)
    eng = make_engine(limits=Limits.from_env(password_hash_concurrency=2))
    eng.identity.add_user("anna", password=PASSWORD)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(eng.identity.verify_password("anna", PASSWORD)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r is not None for r in results)
    assert slow.verifies == 6 and slow.most_at_once <= 2
