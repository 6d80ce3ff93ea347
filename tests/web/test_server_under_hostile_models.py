"""The production server (`almenflow serve`, waitress) keeps answering other requests while a hostile
diagram burns its CPU and memory budget: that work happens in an evaluator process, not in the server."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine import Engine
from tests.engine.bpmn_kit import chain, doc, end, res, script, start

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hostile-test-password"
BOMBS = {
    # one C-level operation for seconds: only RLIMIT_CPU (a kill of the evaluator) can stop it
    "cpu_bomb": ("x = sum([[0] * 1000] * 100000, [])", "time limit", 5),  # CPU, or wall-clock on a busy machine
    # a 10 GB allocation: RLIMIT_AS turns it into MemoryError inside the evaluator at once
    "memory_bomb": ("x = 'x' * 10**10", "memory limit", 1),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture
def server(db_url, tmp_path):
    url = db_url
    engine = Engine.create(url)
    engine.init_db()
    engine.identity.add_user("owner", role="admin", password=PASSWORD)
    engine.definitions.deploy([res(doc(key, start(), script("bomb", code), end(), chain("start", "bomb", "end")),
                                   f"{key}.bpmn") for key, (code, _, _) in BOMBS.items()])
    engine.dispose()
    port = _free_port()
    env = dict(os.environ, ALMENFLOW_DATABASE_URL=url, ALMENFLOW_INSTANCE_PATH=str(tmp_path / "instance"),
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "webapp.cli", "serve", "--port", str(port), "--no-scheduler"],
                            env=env, cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/login", timeout=2).read()
            break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the server did not start")
            time.sleep(0.2)
    yield base, proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.parametrize("key", sorted(BOMBS))
def test_other_requests_are_answered_while_a_hostile_model_runs(server, key):
    base, proc = server
    auth = "Basic " + base64.b64encode(f"owner:{PASSWORD}".encode()).decode()
    outcome: dict = {}

    def start_bomb() -> None:
        request = urllib.request.Request(base + "/api/instances", method="POST",
                                         data=json.dumps({"key": key, "data": {}}).encode(),
                                         headers={"Content-Type": "application/json", "Authorization": auth})
        began = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                outcome["status"], outcome["body"] = response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            outcome["status"], outcome["body"] = exc.code, exc.read().decode()
        outcome["seconds"] = time.monotonic() - began

    bomb = threading.Thread(target=start_bomb)
    bomb.start()
    latencies: list[float] = []
    peak_rss = 0.0
    while bomb.is_alive():
        began = time.monotonic()
        with urllib.request.urlopen(base + "/login", timeout=10) as response:
            assert response.status == 200
        latencies.append(time.monotonic() - began)
        peak_rss = max(peak_rss, _rss_mb(proc.pid))
        time.sleep(0.05)
    bomb.join()

    assert outcome["status"] == 201, outcome
    assert outcome["body"]["status"] == "incident"
    assert BOMBS[key][1] in outcome["body"]["incident"]["message"]
    assert len(latencies) >= BOMBS[key][2], f"only {len(latencies)} requests while the hostile case ran"
    assert max(latencies) < 1.0, f"a request waited {max(latencies):.2f} s while the hostile case ran"
    assert peak_rss < 300, f"the server grew to {peak_rss:.0f} MB"
    with urllib.request.urlopen(base + "/login", timeout=10) as response:  # and it still answers after
        assert response.status == 200
