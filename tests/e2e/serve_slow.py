"""A server process for the shutdown test: ``python -m tests.e2e.serve_slow SECONDS``.

Serves the default rules over both transports on free ports, with a store
whose ``u-current`` takes SECONDS to load, so calls can be caught in flight.
Prints the bound ports as one JSON line once serving.
"""

from __future__ import annotations

import sys

import orjson

from strata.decisions import DecisionService
from strata.profiles import ProfileService
from strata.server import Bound, serve
from strata.transport.operations import Operations
from tests.fakes import PROFILES, DictStore, default_rules


def main() -> None:
    store = DictStore(PROFILES)
    store.delays["u-current"] = float(sys.argv[1])
    rules = default_rules()

    def started(bound: Bound) -> None:
        print(orjson.dumps({"grpc": bound.grpc_port, "http": bound.http_port}).decode(), flush=True)

    serve(
        Operations(DecisionService.from_files(rules, store), ProfileService(rules.schema, store)),
        grpc_port=0,
        http_port=0,
        grace=10.0,
        on_started=started,
    )


if __name__ == "__main__":
    main()
