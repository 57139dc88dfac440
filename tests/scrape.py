"""Reading a running server's Prometheus metrics, and waiting for background work to show in them."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Clients

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(clients: Clients) -> Samples:
    """Every sample of the server's ``GET /metrics``, by name and labels."""
    return scrape_url(clients.base_url, clients.http)


def scrape_url(base_url: str, http: requests.Session | None = None) -> Samples:
    """Every sample of ``GET /metrics`` at ``base_url``, by name and labels."""
    response = (http or requests.Session()).get(base_url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a label set not counted yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def gained(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Poll ``condition`` (background work finishing); fail naming ``what`` if it never holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)
