"""Server CPU per authenticated API request: HTTP Basic (argon2 on every request, and with the
credential cache), a personal API token (Bearer) and a login session, through real HTTP.

    python -m bench.auth_cost [--requests 200] [--rounds 3] [--clients 16]

Two `almenflow serve` processes (waitress) share one SQLite file: one with the credential cache
switched off (ALMENFLOW_LIMIT_CREDENTIAL_CACHE_SECONDS tiny: every request verifies argon2, as
before the cache), one with the defaults. One client sends the same GET /api/tasks?limit=1 with
each kind of credential, the kinds interleaved round by round; the server's CPU is read from
/proc/<pid>/stat before and after each block. Then start + complete of a one-task process per
kind of credential (instances per second, one client). Last, N clients with N different Basic
users hit each server at once and the server's peak RSS (VmHWM) is reported.
Also the engine calls alone, in-process: a token check, a cached and an uncached password check.
Password hashing uses the production argon2 parameters. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from engine import Engine

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"
TICK = os.sysconf("SC_CLK_TCK")
PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:process id="authbench" name="Auth bench" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l1" name="Bench"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>t</bpmn:flowNodeRef><bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="t" name="Do it"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db_url: str, instance: str, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        env = {**os.environ, "ALMENFLOW_DATABASE_URL": db_url, "ALMENFLOW_INSTANCE_PATH": instance,
               "PYTHONPATH": str(ROOT), **extra_env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", "serve", "--port", str(self.port), "--no-scheduler"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Client:
    """One keep-alive HTTP connection with one kind of credential."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = headers

    def request(self, method: str, path: str, body: object = None, extra: dict[str, str] | None = None) -> object:
        headers = {**self.headers, **(extra or {})}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None


def basic(username: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


def session_headers(port: int, username: str) -> dict[str, str]:
    """Log in through the form as a browser would: the session cookie and the CSRF header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    conn.request("POST", "/login", body=urlencode({"username": username, "password": PASSWORD,
                                                   "csrf_token": token}),
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    conn.request("GET", "/", headers={"Cookie": cookie})
    response = conn.getresponse()
    page = response.read().decode()
    if response.headers["Set-Cookie"]:  # the CSRF token was added to the session
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return {"Cookie": cookie, "X-CSRFToken": token}


def block(server: Server, client: Client, n: int, work: str) -> tuple[float, float]:
    """(server CPU seconds, wall seconds) per unit of work over n units."""
    before, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
    for _ in range(n):
        if work == "get":
            client.request("GET", "/api/tasks?limit=1")
        else:
            inst = client.request("POST", "/api/instances", {"key": "authbench"})
            task = inst["tasks"][0]["id"]  # type: ignore[index]
            client.request("POST", f"/api/tasks/{task}/complete", {"data": {}})
    return (cpu_seconds(server.proc.pid) - before) / n, (time.perf_counter() - t0) / n


def concurrent_peak(server: Server, users: list[str], per_client: int) -> tuple[float, float]:
    """Peak RSS (MB) of the server while len(users) clients, one Basic user each, send requests at once."""
    clear = Path(f"/proc/{server.proc.pid}/clear_refs")
    try:
        clear.write_text("5")  # reset the peak (VmHWM) to the current RSS
    except OSError:
        pass
    base = rss_mb(server.proc.pid)
    errors: list[BaseException] = []

    def run(username: str) -> None:
        try:
            c = Client(server.port, basic(username))
            for _ in range(per_client):
                c.request("GET", "/api/tasks?limit=1")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return base, peak_rss_mb(server.proc.pid)


def per_call(fn: object, n: int) -> float:
    """CPU seconds per call of fn, in this process (the engine call alone, no HTTP)."""
    fn()  # type: ignore[operator]
    t0 = time.process_time()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.process_time() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per block (cached kinds)")
    parser.add_argument("--uncached-requests", type=int, default=20, help="requests per block, argon2 each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=30, help="start + complete pairs per block")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/auth.sqlite"
        eng = Engine.create(url)
        eng.init_db()
        eng.identity.add_forum("Bench")
        users = [f"bench{i}" for i in range(max(1, args.clients))]
        for u in users:
            eng.identity.add_user(u, role="admin" if u == "bench0" else "member", forums=["Bench"],
                                  password=PASSWORD)
        bpmn = Path(tmp) / "authbench.bpmn"
        bpmn.write_text(PROCESS)
        eng.definitions.deploy([bpmn], user="bench0")
        bearer = None
        in_process: list[tuple[str, float]] = []
        if hasattr(eng, "tokens"):
            token = eng.tokens.create("bench0", "bench").token
            bearer = {"Authorization": "Bearer " + token}
            in_process = [
                ("tokens.authenticate (Bearer)", per_call(lambda: eng.tokens.authenticate(token), 2000)),
                ("identity.verify_password, cached", per_call(
                    lambda: eng.identity.verify_password("bench0", PASSWORD, cached=True), 2000)),
                ("identity.verify_password, argon2", per_call(
                    lambda: eng.identity.verify_password("bench0", PASSWORD), 10)),
            ]
        eng.dispose()

        uncached = Server(url, tmp, {"ALMENFLOW_LIMIT_CREDENTIAL_CACHE_SECONDS": "0.000001"})
        cached = Server(url, tmp, {})
        try:
            kinds: dict[str, tuple[Server, Client, int, int]] = {
                "Basic, argon2 every request": (uncached, Client(uncached.port, basic("bench0")),
                                                args.uncached_requests, max(3, args.instances // 10)),
                "Basic, credential cache": (cached, Client(cached.port, basic("bench0")), args.requests,
                                            args.instances),
                "login session (cookie)": (cached, Client(cached.port, session_headers(cached.port, "bench0")),
                                           args.requests, args.instances),
            }
            if bearer is not None:
                kinds["Bearer API token"] = (cached, Client(cached.port, bearer), args.requests, args.instances)
            for _server, client, _n, _m in kinds.values():  # warm up: first verification, caches, imports
                for _ in range(3):
                    client.request("GET", "/api/tasks?limit=1")
            results: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "wall": [], "icpu": [], "iwall": []}
                                                          for k in kinds}
            for _ in range(args.rounds):
                for kind, (server, client, n, m) in kinds.items():
                    cpu, wall = block(server, client, n, "get")
                    results[kind]["cpu"].append(cpu)
                    results[kind]["wall"].append(wall)
                    cpu, wall = block(server, client, m, "instance")
                    results[kind]["icpu"].append(cpu)
                    results[kind]["iwall"].append(wall)
            base_u, peak_u = concurrent_peak(uncached, users, 5)
            base_c, peak_c = concurrent_peak(cached, users, 5)
        finally:
            uncached.stop()
            cached.stop()

    print(f"# auth cost: GET /api/tasks?limit=1 and start+complete, 1 client, median of {args.rounds} "
          f"interleaved rounds")
    print(f"{'credential':<30} {'server CPU/request':>19} {'wall/request':>13} {'CPU/instance':>13} "
          f"{'instances/s':>12}")
    for kind, r in results.items():
        print(f"{kind:<30} {statistics.median(r['cpu']) * 1000:>16.2f} ms {statistics.median(r['wall']) * 1000:>10.2f} ms"
              f" {statistics.median(r['icpu']) * 1000:>10.1f} ms {1 / statistics.median(r['iwall']):>12.1f}")
    for what, seconds in in_process:
        print(f"in-process {what:<36} {seconds * 1e6:>10.0f} µs CPU per call")
    print(f"{len(users)} concurrent Basic clients (different users, 5 requests each): server RSS "
          f"argon2 every request {base_u:.0f} -> peak {peak_u:.0f} MB; credential cache {base_c:.0f} -> "
          f"peak {peak_c:.0f} MB")


if __name__ == "__main__":
    main()
