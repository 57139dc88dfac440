"""The ops console in a real browser against a real server: one ops engineer's week, in one flow.

``strata serve --demo`` runs as a subprocess on free ports over a temporary
SQLite file, in a temporary directory, so its console secret and publisher
token land in that directory's ``var/``, where the README tells a newcomer
to look. Debian's ``chromium``, driven by Playwright (never a downloaded
browser), signs in with that token, publishes a file with an error and sees
it at its line, publishes the fixed file, previews it, activates it, sees
the decision change under "Try", rolls back, and finds every step in the
audit log; a page made stale by a change over the API is refused. Each page
is saved under ``test-artifacts/console/``.

Skipped where there is no ``/usr/bin/chromium``, unless
``STRATA_REQUIRE_BROWSER`` is set (as in CI): then it fails.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from strata.rulefiles.loader import load_schema
from strata.store import ProfileStore, make_engine
from strata.store.population import generate_population
from tests.conftest import ROOT, RULES_DIR
from tests.net import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts" / "console"
USERS = 2000
RULESET = "lifecycle.duolingo"
ORIGINAL = (RULES_DIR / f"{RULESET}.yaml").read_text()
CURRENT_WHEN = "    when: active_today and active_d1_d6\n"
# A condition naming a fact that does not exist: refused at its line, nothing stored.
BROKEN = ORIGINAL.replace(CURRENT_WHEN, "    when: active_today and active_d1_d6 and bought_recently\n", 1)
# The "current" stage renamed "engaged", its test case with it: demo-current is now "engaged".
FIXED = ORIGINAL.replace("  - id: current\n", "  - id: engaged\n", 1).replace(
    "expect: {stage: current}", "expect: {stage: engaged}", 1
)

if not CHROMIUM.exists():
    if os.environ.get("STRATA_REQUIRE_BROWSER"):
        raise RuntimeError("STRATA_REQUIRE_BROWSER is set but /usr/bin/chromium is missing")
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402  (after the skip)


@dataclass(frozen=True)
class Server:
    url: str
    token: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``strata serve --demo`` in a fresh directory: what ``make run`` starts, on free ports."""
    home = tmp_path_factory.mktemp("console")
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "STRATA_DATABASE_URL": f"sqlite:///{home / 'strata.db'}",
        "STRATA_RULES_DIR": str(RULES_DIR),
    }
    env.pop("STRATA_CONSOLE_SECRET", None)
    command = [
        sys.executable, "-m", "strata", "serve", "--demo", "--grpc-port", str(grpc_port),
        "--http-port", str(http_port), "--grace", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=home, env=env, stdout=subprocess.PIPE, text=True)
    url = f"http://localhost:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "strata serve exited"
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        population(env["STRATA_DATABASE_URL"])
        token_file = home / "var" / "console-token"
        assert token_file.stat().st_mode & 0o077 == 0, "the demo token must be readable by its owner only"
        yield Server(url, token_file.read_text().strip())
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=30)
    assert f"Console  http://localhost:{http_port}/console" in stdout


def population(database_url: str) -> None:
    """Synthetic users beside the demo's, so the preview has a population to move."""
    engine = make_engine(database_url)
    try:
        store = ProfileStore(engine, load_schema(RULES_DIR / "profile.yaml"))
        store.import_profiles(generate_population(USERS, seed=10, as_of=dt.datetime.now(dt.UTC)))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One headless Chromium with a fresh profile, one page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(30_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def try_stage(page: Page, server: Server, user: str) -> str:
    page.goto(f"{server.url}/console/try")
    page.fill("input[name=user_id]", user)
    page.click("#try-form button[type=submit]")
    card = page.locator(f'section.decision[data-ruleset="{RULESET}"]')
    return card.locator("dd.field-stage").inner_text()


def change(page: Page, server: Server, form: str, before: str, after: str) -> None:
    """Submit a change form on the ruleset page, check what it says will change, confirm it."""
    page.goto(f"{server.url}/console/rulesets/{RULESET}")
    page.click(f"form[action$='/change/{form}'] button[type=submit]")
    expect(page.locator("#effects tbody td")).to_have_text([before, after])
    shot(page, f"confirm-{form}")
    page.click("button.danger")
    expect(page.locator(".flash")).to_contain_text("done")


def test_publish_preview_activate_try_roll_back_audit(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/signin\?next=/console/$"))
    shot(page, "signin")
    page.fill("input[name=token]", server.token)
    page.click("form button[type=submit]")
    row = page.locator(f'#rulesets tr[data-ruleset="{RULESET}"]')
    expect(row.locator("td.active")).to_contain_text("v1")
    shot(page, "rulesets")

    page.click("nav >> text=Publish")
    page.fill("#content", BROKEN)
    page.fill("input[name=note]", "current needs a recent purchase")
    page.click("form.stack button[type=submit]")
    line = ORIGINAL.splitlines().index(CURRENT_WHEN.rstrip("\n")) + 1
    problem = page.locator("#located td.problem")
    expect(problem).to_contain_text(f"line {line}: rule current: stages.1.when:")
    expect(problem).to_contain_text("bought_recently")
    expect(page.locator(f"#located tr#L{line}.bad")).to_be_visible()
    shot(page, "publish-error")

    page.fill("#content", FIXED)
    page.fill("input[name=note]", "current is now called engaged")
    page.click("form.stack button[type=submit]")
    expect(page.locator(".flash")).to_contain_text(f"Published {RULESET} v2")
    expect(page.locator("#tests")).to_contain_text("8 of 8 pass")
    page.select_option("select[name=against]", "1")
    expect(page.locator("table.diff")).to_contain_text("engaged")
    shot(page, "version")

    page.click("text=Preview against the active version")
    heatmap = page.locator("#heatmap")
    current_row = heatmap.locator("tbody tr", has=page.locator("th", has_text=re.compile("^current$")))
    expect(current_row.locator("td.moved")).to_have_count(1)  # every current user, and only they, move
    expect(heatmap.locator("td.moved")).to_have_count(1)
    moves = page.locator("#moves tbody tr")
    expect(moves).to_have_count(1)
    expect(moves.locator("td").nth(0)).to_have_text("current")
    expect(moves.locator("td").nth(1)).to_have_text("engaged")
    expect(moves.locator("a").first).to_have_text("demo-current")  # the lowest user id of the cell
    shot(page, "preview")

    assert try_stage(page, server, "demo-current") == "current"
    change(page, server, "activate", "v1", "v2")
    expect(page.locator("#active-version")).to_have_text("v2")
    assert try_stage(page, server, "demo-current") == "engaged"
    why = page.locator(f'section.decision[data-ruleset="{RULESET}"] .why')
    expect(why).to_contain_text("engaged: active today and at least once in the previous 6 days")
    expect(why).to_contain_text("active_d1_d6 = True, active_today = True")
    shot(page, "try")

    change(page, server, "rollback", "v2", "v1")
    expect(page.locator("#active-version")).to_have_text("v1")
    assert try_stage(page, server, "demo-current") == "current"

    # Someone moves an alias over the API while the page is open: the page's change is refused.
    page.goto(f"{server.url}/console/rulesets/{RULESET}")
    loaded = page.locator("form[action$='/change/activate'] input[name=expected_revision]").get_attribute(
        "value"
    )
    moved = requests.put(
        f"{server.url}/v1/rulesets/{RULESET}/aliases/canary",
        json={"version": 2, "expected_revision": int(loaded or 0)},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert moved.status_code == 200, moved.text
    page.click("form[action$='/change/activate'] button[type=submit]")
    expect(page.locator("h1")).to_have_text("Changed since you loaded the page")
    expect(page.locator(".error")).to_contain_text(f"is at revision {int(loaded or 0) + 1}, not {loaded}")
    shot(page, "conflict")

    page.goto(f"{server.url}/console/audit?ruleset={RULESET}")
    actions = page.locator("#audit tbody tr")
    # newest first: ours, then the seeding of v1 from rules/
    expect(actions.locator("td.action")).to_have_text(
        ["alias", "rollback", "activate", "publish", "activate", "publish"]
    )
    expect(actions.locator("td.actor")).to_have_text([re.compile(r"^demo-ops-\w+$")] * 4 + ["seed", "seed"])
    expect(actions.locator("td.versions")).to_have_text(["v2", "v2 → v1", "v1 → v2", "v2", "v1", "v1"])
    shot(page, "audit")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    page.goto(f"{server.url}/console/rulesets/{RULESET}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-ruleset")
