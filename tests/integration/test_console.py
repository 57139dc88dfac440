"""The console's guards, through Flask's test client over a real registry on SQLite.

What a browser cannot easily show: a forged form is refused, a reader cannot
change anything, a stale page changes nothing, the cookie is locked down, a
revoked token ends its session. The whole flow in a browser is in
``tests/e2e/test_console_browser.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from strata.access.store import TokenStore
from strata.access.tokens import Tokens
from strata.config import Settings
from strata.console.demo import demo_secret, demo_token
from strata.transport.http import create_app
from strata.wiring import Services, build_services
from tests.conftest import RULES_DIR
from tests.console_forms import csrf_of
from tests.registry_files import LIFECYCLE, lifecycle

BASE = "https://localhost"  # the session cookie is Secure
SECRET = "a-test-secret-of-at-least-32-characters"


@dataclass
class Console:
    services: Services
    client: FlaskClient

    def page(self, path: str, status: int = 200) -> str:
        response = self.client.get(path, base_url=BASE)
        assert response.status_code == status, response.text
        return response.text

    def post(self, path: str, data: dict[str, str], *, csrf_from: str | None = None) -> tuple[int, str]:
        """POST a form with the CSRF token of the page at ``csrf_from`` (None: no token)."""
        if csrf_from is not None:
            data = {"csrf_token": csrf_of(self.page(csrf_from)), **data}
        response = self.client.post(path, data=data, base_url=BASE)
        return response.status_code, response.text

    def sign_in(self, token: str) -> None:
        status, _ = self.post("/console/signin", {"token": token}, csrf_from="/console/signin")
        assert status == 302

    def revision(self) -> int:
        return self.services.registry.head(LIFECYCLE).revision


def small_registry(tmp_path: Path, secret: str) -> Settings:
    """Settings for a registry seeded with one small lifecycle ruleset (fast to compile)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES_DIR / "profile.yaml", rules / "profile.yaml")
    (rules / "lifecycle.probe.yaml").write_text(lifecycle(7))
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'strata.db'}", rules_dir=rules, console_secret=secret
    )


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """lifecycle.probe v1 (active) and v2, and the console app; tokens checked on every request."""
    settings = small_registry(tmp_path, SECRET)
    services = build_services(settings, run_migrations=True)
    services.registry.publish(lifecycle(10), "seed")
    services.active.refresh()  # as the watcher would: v2 can be pinned
    uncached = Tokens(TokenStore(services.engine), ttl=0)  # a revocation is seen on the next page
    services = dataclasses.replace(services, tokens=uncached)
    app = create_app(services.operations(), console=services.console(settings.console_secret))
    try:
        yield Console(services, app.test_client())
    finally:
        services.engine.dispose()


@pytest.fixture
def publisher(console: Console) -> Console:
    console.sign_in(console.services.tokens.create("ana", "publisher"))
    return console


def test_a_signed_out_visitor_is_sent_to_sign_in(console: Console) -> None:
    response = console.client.get("/console", base_url=BASE)  # the address make run prints
    assert response.status_code == 308
    assert response.headers["Location"] == f"{BASE}/console/"
    response = console.client.get("/console/rulesets/lifecycle.probe", base_url=BASE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/signin?next=/console/rulesets/lifecycle.probe"


def test_a_bad_token_is_refused_with_strata_s_message(console: Console) -> None:
    status, html = console.post("/console/signin", {"token": "strata_nope"}, csrf_from="/console/signin")
    assert status == 401
    assert "the bearer token is not valid" in html


def test_the_session_cookie_is_secure_http_only_same_site_and_holds_no_token(console: Console) -> None:
    token = console.services.tokens.create("ana", "publisher")
    csrf = csrf_of(console.page("/console/signin"))
    response = console.client.post(
        "/console/signin", data={"token": token, "csrf_token": csrf}, base_url=BASE
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("strata_console=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/console"):
        assert attribute in cookie
    assert token not in cookie  # signed, not encrypted: it keeps the token's hash only
    assert response.headers["Location"] == "/console/"


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(console: Console) -> None:
    token = console.services.tokens.create("ana", "publisher")
    for wanted, landed in [("/console/audit", "/console/audit"), ("//evil.example/x", "/console/")]:
        csrf = csrf_of(console.page("/console/signin"))
        response = console.client.post(
            "/console/signin", data={"token": token, "csrf_token": csrf, "next": wanted}, base_url=BASE
        )
        assert response.headers["Location"] == landed


def test_a_form_without_the_session_s_csrf_token_is_refused(publisher: Console) -> None:
    form = {"expected_revision": str(publisher.revision()), "version": "2", "confirmed": "yes"}
    path = "/console/rulesets/lifecycle.probe/change/activate"
    for data in (form, {**form, "csrf_token": "forged"}):
        status, html = publisher.post(path, data)
        assert status == 403
        assert "this form did not come from your console session" in html
    assert publisher.services.registry.head(LIFECYCLE).active_version == 1
    status, _ = publisher.post("/console/publish", {"content": lifecycle(12)})
    assert status == 403
    assert publisher.services.registry.head(LIFECYCLE).latest_version == 2


def test_a_reader_sees_everything_and_changes_nothing(console: Console) -> None:
    console.sign_in(console.services.tokens.create("rita", "reader"))
    ruleset_page = console.page("/console/rulesets/lifecycle.probe")
    assert "v2" in ruleset_page
    assert "Activate…" not in ruleset_page and "Publish</a>" not in ruleset_page
    console.page("/console/rulesets/lifecycle.probe/versions/2?against=1")
    console.page("/console/audit")
    form = {"expected_revision": str(console.revision()), "version": "2", "confirmed": "yes"}
    status, html = console.post(
        "/console/rulesets/lifecycle.probe/change/activate", form, csrf_from="/console/"
    )
    assert status == 403
    assert "&#39;rita&#39; signed in with a reader token" in html
    status, _ = console.post("/console/publish", {"content": lifecycle(12)}, csrf_from="/console/")
    assert status == 403
    assert console.services.registry.head(LIFECYCLE).active_version == 1
    assert console.services.registry.head(LIFECYCLE).latest_version == 2


def test_a_change_is_confirmed_then_made_then_audited(publisher: Console) -> None:
    path = "/console/rulesets/lifecycle.probe/change/activate"
    form = {"expected_revision": str(publisher.revision()), "version": "2"}
    status, html = publisher.post(path, form, csrf_from="/console/rulesets/lifecycle.probe")
    assert status == 200
    assert re.search(r"<th>active version</th><td>v1</td><td><strong>v2</strong>", html)
    assert publisher.services.registry.head(LIFECYCLE).active_version == 1  # not before confirming
    status, _ = publisher.post(path, {**form, "confirmed": "yes"}, csrf_from="/console/")
    assert status == 302
    assert publisher.services.registry.head(LIFECYCLE).active_version == 2
    entry = publisher.services.registry.audit(LIFECYCLE, limit=1)[0]
    assert (entry.actor, entry.action, entry.from_version, entry.to_version) == ("ana", "activate", 1, 2)


def test_a_stale_page_gets_a_conflict_and_changes_nothing(publisher: Console) -> None:
    loaded = publisher.revision()
    publisher.services.registry.set_alias(LIFECYCLE, "canary", 2, loaded, "someone-else")
    path = "/console/rulesets/lifecycle.probe/change/activate"
    for step in ({}, {"confirmed": "yes"}):  # refused on the confirmation step and on the change itself
        form = {"expected_revision": str(loaded), "version": "2", **step}
        status, html = publisher.post(path, form, csrf_from="/console/")
        assert status == 409
        assert "Changed since you loaded the page" in html
        assert f"is at revision {loaded + 1}, not {loaded}" in html
        assert "nothing was changed" in html
    assert publisher.services.registry.head(LIFECYCLE).active_version == 1


def test_a_publish_error_is_shown_at_its_line_and_nothing_is_stored(publisher: Console) -> None:
    broken = lifecycle(7, when="(days_since_last_active ?? 999) <= windw")
    status, html = publisher.post("/console/publish", {"content": broken}, csrf_from="/console/publish")
    assert status == 400
    line = broken.splitlines().index("    when: (days_since_last_active ?? 999) <= windw") + 1
    assert re.search(rf'<td class="problem">line {line}: rule active: stages\.0\.when: .*windw', html)
    assert publisher.services.registry.head(LIFECYCLE).latest_version == 2


def test_a_revoked_token_ends_its_session(console: Console) -> None:
    tokens = console.services.tokens
    console.sign_in(tokens.create("leaving", "publisher"))
    console.page("/console/")
    tokens.revoke("leaving")
    response = console.client.get("/console/", base_url=BASE)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/signin")


def test_the_api_neither_reads_nor_writes_the_console_session(publisher: Console) -> None:
    cookie = publisher.client.get_cookie("strata_console", domain="localhost", path="/console")
    assert cookie is not None
    for path in ("/readyz", "/v1/rulesets"):  # a browser would not send it here; a client might
        response = publisher.client.get(
            path, base_url=BASE, headers={"Cookie": f"strata_console={cookie.value}"}
        )
        assert response.status_code == 200, response.text
        assert "Set-Cookie" not in response.headers
        assert "Vary" not in response.headers  # the answer does not depend on the cookie
    publisher.page("/console/audit")  # still signed in


def test_without_a_secret_the_console_says_how_to_turn_it_on(tmp_path: Path) -> None:
    settings = small_registry(tmp_path, secret="")
    services = build_services(settings, run_migrations=True)
    try:
        app = create_app(services.operations(), console=services.console(settings.console_secret))
        response = app.test_client().get("/console/", base_url=BASE)
        assert response.status_code == 503
        assert "STRATA_CONSOLE_SECRET" in response.text
    finally:
        services.engine.dispose()


def test_alias_split_and_shadow_are_confirmed_then_made(publisher: Console) -> None:
    path = "/console/rulesets/lifecycle.probe/change/"
    steps = [
        ("alias", {"alias": "canary", "version": "2"}, ("alias canary", "none", "v2")),
        ("split", {"arms": "1:0.5,2:0.5", "seed": "exp-1"}, ("traffic split", "none", "1:0.5,2:0.5")),
        ("end-split", {}, ("traffic split", "1:0.5,2:0.5", "none")),
        ("shadow", {"version": "2", "share": "0.25"}, ("shadow", "none", "v2 for 25% of users")),
        ("end-shadow", {}, ("shadow", "v2 for 25% of users", "none")),
    ]
    for action, fields, (what, before, after) in steps:
        form = {"expected_revision": str(publisher.revision()), **fields}
        status, html = publisher.post(path + action, form, csrf_from="/console/")
        assert status == 200, html
        row = re.search(r"<tr><th>(.*?)</th><td>(.*?)</td><td><strong>(.*?)</strong>", html)
        assert row is not None
        assert row.group(1) == what and row.group(2).startswith(before) and row.group(3).startswith(after)
        status, html = publisher.post(path + action, {**form, "confirmed": "yes"}, csrf_from="/console/")
        assert status == 302, html
    registry = publisher.services.registry
    assert registry.head(LIFECYCLE).aliases == {"canary": 2}
    assert registry.split(LIFECYCLE) is None
    assert registry.shadow(LIFECYCLE) is None
    actions = [entry.action for entry in registry.audit(LIFECYCLE, limit=5)]
    assert actions == ["shadow", "shadow", "split", "split", "alias"]


@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("alias", {"alias": "Not An Alias", "version": "2"}, "invalid alias &#39;Not An Alias&#39;"),
        ("activate", {"version": "9"}, "ruleset &#39;lifecycle.probe&#39; has no version 9"),
        ("split", {"arms": "1:0.7,2:0.7"}, "weights are at least 0 and add up to 1"),
        ("rollback", {}, "has no earlier active version to roll back to"),
        ("shadow", {"version": "2", "share": "0"}, "a share of the requests, more than 0 and at most 1"),
        ("activate", {"version": "two"}, "invalid version &#39;two&#39;"),
    ],
)
def test_a_bad_change_is_refused_before_the_confirmation_with_strata_s_message(
    publisher: Console, action: str, fields: dict[str, str], message: str
) -> None:
    form = {"expected_revision": str(publisher.revision()), **fields}
    status, html = publisher.post(
        f"/console/rulesets/lifecycle.probe/change/{action}", form, csrf_from="/console/"
    )
    assert status in (400, 404), html
    assert message in html
    assert "Confirm" not in html


def test_an_uploaded_file_is_published(publisher: Console) -> None:
    csrf = csrf_of(publisher.page("/console/publish"))
    data = {
        "csrf_token": csrf,
        "content": "",
        "note": "by upload",
        "file": (io.BytesIO(lifecycle(12).encode()), "x.yaml"),
    }
    response = publisher.client.post("/console/publish", data=data, base_url=BASE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/rulesets/lifecycle.probe/versions/3"
    assert publisher.services.registry.version(LIFECYCLE, 3).note == "by upload"


def test_try_refuses_a_pasted_profile_that_is_not_json_and_keeps_the_input(publisher: Console) -> None:
    form = {"profile": '{"user_id": "x",', "lifecycle": "lifecycle.probe"}
    status, html = publisher.post("/console/try", form, csrf_from="/console/try")
    assert status == 400
    assert "the profile is not valid JSON" in html
    assert "{&#34;user_id&#34;: &#34;x&#34;," in html


def test_try_decides_a_pasted_profile_under_any_version(publisher: Console) -> None:
    """Last active 9 days before as_of: v1 (a 7-day window) says idle, v2 (10 days) says active."""
    profile = '{"user_id": "p1", "activity_dates": ["2026-03-01"]}'
    pins = {"lifecycle": "lifecycle.probe@1", "segment": "lifecycle.probe@2"}
    form = {"profile": profile, "as_of": "2026-03-10T12:00:00Z", **pins}
    form |= {"incentive": "lifecycle.probe", "intervention": "lifecycle.probe"}  # the only ruleset here
    status, html = publisher.post("/console/try", form, csrf_from="/console/try")
    assert status == 200, html
    answers = re.findall(r"<small>(v\d) · (\w+)</small>.*?field-stage\">(\w+)<", html, re.S)
    active = ("v1", "active", "idle")
    assert answers == [("v1", "pinned", "idle"), ("v2", "pinned", "active"), active, active]


def test_a_pasted_file_is_previewed_before_it_is_published(publisher: Console) -> None:
    """Last active 9 days ago: idle under the active 7-day window, active under a pasted 12-day one."""
    nine_days_ago = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=9)).isoformat()
    publisher.services.store.upsert({"user_id": "p9", "activity_dates": [nine_days_ago]})
    form = {"content": lifecycle(12), "note": ""}
    status, html = publisher.post("/console/preview", form, csrf_from="/console/publish")
    assert status == 200, html
    assert re.search(r"<td>idle</td><td>active</td><td>1</td>\s*<td>100.0%</td>\s*<td><a [^>]*>p9</a>", html)
    assert publisher.services.registry.head(LIFECYCLE).latest_version == 2  # nothing stored
    status, html = publisher.post("/console/preview", {"content": "name: [unclosed"}, csrf_from="/console/")
    assert status == 400
    assert "malformed YAML: did not find expected" in html  # at line 2, past the end: listed above


def test_a_stored_version_is_previewed_against_any_other(publisher: Console) -> None:
    html = publisher.page("/console/rulesets/lifecycle.probe/preview?candidate=2&against=1")
    assert "v2 against v1" in html
    html = publisher.page("/console/rulesets/lifecycle.probe/preview?candidate=7", status=404)
    assert "has no version 7" in html


def test_the_demo_keeps_its_secret_and_token_and_replaces_a_token_this_database_does_not_know(
    console: Console, tmp_path: Path
) -> None:
    home = tmp_path / "demo"
    secret = demo_secret(home)
    assert len(secret) >= 32 and demo_secret(home) == secret
    tokens = console.services.tokens
    token_file = demo_token(tokens, home)
    token = token_file.read_text()
    assert demo_token(tokens, home).read_text() == token  # a restart: the same token to paste
    for path in (home / "console-secret", token_file):
        assert path.stat().st_mode & 0o777 == 0o600
    token_file.write_text("strata_from-another-database\n")
    assert demo_token(tokens, home).read_text() not in (token, "strata_from-another-database\n")
    console.sign_in(token_file.read_text().strip())
    assert "lifecycle.probe" in console.page("/console/")
