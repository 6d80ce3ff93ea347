"""Row 3: one client driving a real `almenflow serve` (waitress) over HTTP on embedded SQLite.

The client keeps one connection open (HTTP/1.1 keep-alive) and, per instance, starts the 5-step process
and completes both its tasks through the JSON API. It authenticates the ways a script can: a personal API
token (Bearer) when the engine has them, the browser's login session (form login, X-CSRFToken), and HTTP
Basic; the kinds are measured in interleaved rounds. Server CPU and memory come from /proc."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from engine import Engine

from . import processes
from .common import ROOT, Group, Sizes, children, cpu_seconds, deploy, median, memory_mb, new_engine, of_limit

USER, PASSWORD, FORUM, KEY = "bench", "bench-password-1", "Sekretariat", "five"
ROUNDS = 3


class Client:
    """One keep-alive connection with a cookie jar of one cookie (the session) and fixed headers."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = dict(headers or {})
        self.cookie: str | None = None

    def request(self, method: str, path: str, body: Any = None, form: dict[str, str] | None = None,
                expect: int | tuple[int, ...] = 200) -> tuple[Any, float]:
        headers = dict(self.headers)
        data: bytes | None = None
        if form is not None:
            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.cookie:
            headers["Cookie"] = self.cookie
        began = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        took = time.perf_counter() - began
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        expected = (expect,) if isinstance(expect, int) else expect
        if response.status not in expected:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {raw[:300]!r}")
        if response.getheader("Content-Type", "").startswith(("application/json", "application/problem+json")):
            return json.loads(raw), took
        return raw.decode("utf-8", "replace"), took

    def close(self) -> None:
        self.conn.close()


def login(port: int) -> Client:
    """A browser's way in: the login form, then the CSRF token of a page for the API's unsafe requests."""
    client = Client(port)
    page, _ = client.request("GET", "/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert token, "no CSRF token in the login form"
    client.request("POST", "/login", form={"username": USER, "password": PASSWORD, "csrf_token": token.group(1)},
                   expect=302)
    home, _ = client.request("GET", "/")
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', home)
    assert meta, "no CSRF token on the start page after logging in"
    client.headers["X-CSRFToken"] = meta.group(1)
    return client


def api_token(eng: Engine) -> str | None:
    """A personal API token from the engine's own service, when this version has one."""
    tokens = getattr(eng, "tokens", None)
    if tokens is None or not callable(getattr(tokens, "create", None)):
        return None
    created = tokens.create(USER, "bench")
    return getattr(created, "token", None) or created.to_dict()["token"]


def one_instance(client: Client, completes: list[float]) -> None:
    inst, _ = client.request("POST", "/api/instances", {"key": KEY, "data": {}}, expect=201)
    done, took = client.request("POST", f"/api/tasks/{inst['tasks'][0]['id']}/complete", {"data": {"n": 1}})
    completes.append(took)
    done, took = client.request("POST", f"/api/tasks/{done['next_task']['id']}/complete", {"data": {}})
    completes.append(took)
    assert done["next_task"] is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp: str, url: str, port: int) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).parent / "almenflow"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "webapp.cli"]
    env = dict(os.environ, ALMENFLOW_DATABASE_URL=url, ALMENFLOW_INSTANCE_PATH=tmp,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    server = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                              env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "server.log", "wb"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"almenflow serve exited: {(Path(tmp) / 'server.log').read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("almenflow serve did not answer within 90 s")


def run(group: Group, sizes: Sizes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/http.sqlite"
        eng = new_engine(url)
        eng.identity.add_forum(FORUM)
        eng.identity.add_user(USER, role="admin", forums=[FORUM], password=PASSWORD)
        deploy(eng, f"{KEY}.bpmn", processes.five_step(KEY, FORUM))
        token = api_token(eng)
        eng.dispose()

        port = free_port()
        server = serve(tmp, url, port)
        try:
            _measure(group, sizes, server.pid, port, token)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def _measure(group: Group, sizes: Sizes, pid: int, port: int, token: str | None) -> None:
    started_rss = memory_mb(pid)
    clients: dict[str, Client] = {}
    if token:
        clients["API token (Bearer)"] = Client(port, {"Authorization": f"Bearer {token}"})
    clients["login session (cookie + X-CSRFToken)"] = login(port)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    clients["HTTP Basic"] = Client(port, {"Authorization": f"Basic {basic}"})
    primary = next(iter(clients))
    for client in clients.values():  # warm every code path once
        one_instance(client, [])
    idle_rss = memory_mb(pid)
    evaluators = children(pid)

    per_round = {name: max(1, (sizes.http_basic_instances if name == "HTTP Basic" else sizes.http_instances)
                           // ROUNDS) for name in clients}
    wall = {name: 0.0 for name in clients}
    cpu = {name: 0.0 for name in clients}
    count = {name: 0 for name in clients}
    completes: dict[str, list[float]] = {name: [] for name in clients}
    peak_rss = idle_rss
    for _ in range(ROUNDS):
        for name, client in clients.items():
            c0, w0 = cpu_seconds(pid), time.perf_counter()
            for _ in range(per_round[name]):
                one_instance(client, completes[name])
            wall[name] += time.perf_counter() - w0
            cpu[name] += cpu_seconds(pid) - c0
            count[name] += per_round[name]
            peak_rss = max(peak_rss, memory_mb(pid))
    for client in clients.values():
        client.close()

    for name in clients:
        rate = count[name] / wall[name]
        p50 = median(completes[name])
        is_primary = name == primary
        group.add(f"{name}: instances per second ({count[name]} instances, 3 requests each)", f"{rate:.1f}/s",
                  f"{rate / 115:.2f}× target" if is_primary else "", "≥ 115/s" if is_primary else "",
                  rate >= 115 if is_primary else None)
        group.add(f"{name}: complete, median latency", f"{p50 * 1000:.1f} ms", of_limit(p50, 0.005) if is_primary else "",
                  "< 5 ms" if is_primary else "", p50 < 0.005 if is_primary else None)
        group.add(f"{name}: server CPU per instance", f"{cpu[name] / count[name] * 1000:.1f} ms")
    if primary != "API token (Bearer)":
        group.add("API token (Bearer)", "not measured: this engine has no personal API tokens (engine.tokens)")
    hwm = max(peak_rss, memory_mb(pid, "VmHWM"))
    group.add("server RSS after start / idle after one instance per kind", f"{started_rss:.0f} MB / {idle_rss:.0f} MB",
              of_limit(idle_rss, 100), "< 100 MB", idle_rss < 100)
    group.add("server RSS peak (VmHWM, whole run)", f"{hwm:.0f} MB", of_limit(hwm, 100), "< 100 MB", hwm < 100)
    if evaluators:
        group.add(f"its {len(evaluators)} evaluator process(es), RSS", " + ".join(f"{memory_mb(p):.0f} MB"
                                                                                 for p in evaluators))
