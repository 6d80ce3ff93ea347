"""Browser fixtures: the demo web app on a live server (its own database, of the kind --db chooses) and
Debian's Chromium driven by Playwright.

- `live`: one server per session (werkzeug, threaded, 127.0.0.1 on a free port) over an engine with the
  demo organisation, processes and cases (webapp.demo.load_demo). `live.engine` is the same engine the
  server uses, so a test can check the state the UI produced.
- `browser`: one headless Chromium per session (/usr/bin/chromium; `make browser-deps` installs it).
- `page`: a fresh browser context and page per test; `login(page, user, password)` uses the real form.
- `shot(page, step)`: a full-page screenshot in test-artifacts/screenshots/<test>-<step>.png.
- `assert_accessible(page, what)`: axe-core (node_modules, `make npm`) with the WCAG 2.0/2.1 A/AA rules.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine import Engine

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PROCESSES = ROOT / "processes"
ORGANISATION = PROCESSES / "organisation.yaml"

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000
AXE_URL_PATH = "/__browser-tests__/axe.min.js"
AXE_ROUTE = "**" + AXE_URL_PATH
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# Demo logins (processes/organisation.yaml).
MEMBER = ("anna", "demo-anna")  # TMF sekretariat: the "Visitér henvendelsen" tasks of the demo cases
ADMIN = ("admin", "demo-admin")
OWNER = ("owner", "demo-owner")


@dataclass
class LiveServer:
    url: str
    engine: Engine


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, new_database) -> Iterator[LiveServer]:
    from argon2 import PasswordHasher
    from werkzeug.serving import make_server

    import engine.services.identity as identity
    from webapp import create_app
    from webapp.demo import load_demo

    folder = tmp_path_factory.mktemp("live")
    engine = Engine.create(new_database())
    engine.init_db()
    # Argon2 at production cost makes loading the demo's 24 users take ~5 s and every login ~1 s. The
    # demo's passwords are hashed at a low cost instead (argon2 keeps the cost in each hash, so logging
    # in through the real form verifies them quickly); the production hasher is back before any test.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        load_demo(engine, ORGANISATION, PROCESSES)
    app = create_app(engine, {"ALMENFLOW_SCHEDULER": False, "SECRET_KEY": "browser-tests",
                              "ALMENFLOW_INSTANCE_PATH": str(folder / "instance")})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", engine)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (installs Debian's chromium and "
                    "chromium-driver) to run the browser tests", pytrace=False)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def context(browser: Any, live: LiveServer) -> Iterator[Any]:
    ctx = browser.new_context(base_url=live.url, locale="da-DK", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    """A page whose `js_errors` collects uncaught JavaScript errors and Content-Security-Policy refusals
    (an inline script or style the app's CSP blocks): tests assert it is empty."""
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}")
          if msg.type == "error" and "Content Security Policy" in msg.text else None)
    pg.js_errors = errors
    yield pg
    pg.close()


def login(page: Any, user: str, password: str) -> None:
    """Log in through the real login form and check that it worked."""
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form.form button[type=submit]")
    assert "/login" not in page.url, f"login as {user} failed: {page.locator('main').inner_text()}"


@pytest.fixture
def shot(request: pytest.FixtureRequest):
    """shot(page, "step") -> test-artifacts/screenshots/<test>-<step>.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")

    def take(page: Any, step: str) -> Path:
        path = SCREENSHOTS / f"{test}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', step)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def wait_for_diagrams(page: Any) -> None:
    """bpmn-js draws after load: wait until every viewer/modeler on the page is drawn (or has failed)."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-bpmn-viewer]')]
                   .every(el => el.matches('.diagram--ready, .diagram--failed'))
              && [...document.querySelectorAll('[data-bpmn-modeler]')]
                   .every(el => el.matches('.modeler--ready') ||
                                !el.querySelector('#modeler-status').hidden)""")


def axe_violations(page: Any, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: run `make npm` (installs axe-core from package.json)",
                    pytrace=False)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # The app's Content-Security-Policy allows scripts from 'self' only, so add_script_tag(path=...)
        # (an inline script) is refused. Rather than switch CSP off for the whole test (which would hide
        # an inline script of our own), axe-core is served from a same-origin URL the browser context
        # answers itself with the file; the app never sees the request.
        page.context.route(AXE_ROUTE, lambda route: route.fulfill(path=str(AXE),
                                                                  content_type="text/javascript"))
        page.add_script_tag(url=AXE_URL_PATH)
    context = {"include": [["html"]], "exclude": [[s] for s in exclude]} if exclude else "document"
    return page.evaluate(
        """async ([context, tags]) => {
             const ctx = context === 'document' ? document : context;
             const result = await axe.run(ctx, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
             return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                 nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary, html: n.html}))}));
           }""",
        [context, AXE_TAGS])


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:10]:
            lines.append(f"    at {json.dumps(node['target'])}: {node['html'][:200]}")
            if node.get("summary"):
                lines.append("      " + node["summary"].replace("\n", "\n      "))
        if len(v["nodes"]) > 10:
            lines.append(f"    ... and {len(v['nodes']) - 10} more")
    return "\n".join(lines)


def assert_accessible(page: Any, what: str, exclude: list[str] | None = None) -> None:
    """No axe-core violations of WCAG 2.0/2.1 level A and AA on the page as it is now."""
    violations = axe_violations(page, exclude)
    assert not violations, (f"axe-core: {len(violations)} WCAG 2.1 AA violation(s) on {what} ({page.url}):\n"
                            + describe_violations(violations))
    errors = getattr(page, "js_errors", [])
    assert not errors, f"JavaScript errors on {what} ({page.url}):\n" + "\n".join(errors)
