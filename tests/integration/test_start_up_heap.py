"""A serving process freezes what start-up built (issue 9: full GC passes cost 12% of a batch) and
spaces out the collector's young passes (which walked a batch's live results).

Checked in a fresh interpreter, as gunicorn loads the app: ``strata.transport.wsgi:app``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from strata.store import migrate
from strata.wiring import YOUNG_COLLECTION_THRESHOLD
from tests.conftest import RULES_DIR

PROBE = """
import gc
before = gc.get_freeze_count()
from strata.transport import wsgi
client = wsgi.app.test_client()
answer = client.post("/v1/decide", json={
    "profile": {"user_id": "u1", "registered_at": "2026-01-02T03:04:05Z", "timezone": "UTC"},
    "rulesets": ["lifecycle"],
})
print(before, gc.get_freeze_count(), answer.status_code, gc.get_threshold()[0])
"""


def test_the_wsgi_app_prepares_its_heap_and_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'strata.db'}"
    migrate(url)
    env = {
        **os.environ,
        "STRATA_DATABASE_URL": url,
        "STRATA_RULES_DIR": str(RULES_DIR),
        "STRATA_RULES_SNAPSHOT": str(tmp_path / "saved.json"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    before, after, status, young = (int(word) for word in done.stdout.split())
    assert before == 0
    assert after > 10_000  # the modules, the schema and every compiled ruleset
    assert status == 200, done.stderr
    assert young == YOUNG_COLLECTION_THRESHOLD
