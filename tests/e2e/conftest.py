"""Real servers for the e2e tests: gRPC and HTTP on free ports, one service behind both.

Both servers share one DecisionService over the default rule files and one
in-memory profile store, so a request sent over each must give the same
answer. ``Clients`` sends the same request both ways and returns what each
transport said, in one comparable shape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
import orjson
import pytest
import requests
from google.protobuf import json_format
from werkzeug.serving import make_server

from strata.access.store import TokenStore
from strata.access.tokens import Access, Tokens
from strata.decisions import DecisionService
from strata.preview.service import Previews
from strata.profiles import ProfileService
from strata.registry.seed import seed
from strata.registry.service import Registry
from strata.registry.store import RegistryStore
from strata.store import make_engine, migrate
from strata.transport import grpc_server
from strata.transport.convert import message_to_json
from strata.transport.errors import ERROR_TABLE, GRPC_ERROR_KEY, code_for_grpc
from strata.transport.http import create_app
from strata.transport.operations import ROUTES, Operations, Route
from tests.conftest import RULES_DIR
from tests.fakes import PROFILES, DictStore, default_rules

ROUTE_BY_RPC = {route.rpc: route for route in ROUTES}


@dataclass(frozen=True)
class Outcome:
    """What one transport answered: a body, or an error envelope with its code."""

    ok: bool
    body: dict[str, Any]
    status: int | grpc.StatusCode

    @property
    def code(self) -> str:
        return "ok" if self.ok else str(self.body["code"])


class Clients:
    def __init__(self, base_url: str, channel: grpc.Channel) -> None:
        self.base_url = base_url
        self.channel = channel
        self.http = requests.Session()

    # REST ------------------------------------------------------------------

    def rest_raw(
        self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Outcome:
        response = self.http.request(method, self.base_url + path, data=data, headers=headers, timeout=30)
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        if response.status_code == 200:
            return Outcome(True, body, 200)
        assert ERROR_TABLE[body["code"]].http == response.status_code or response.status_code == 405
        return Outcome(False, body, response.status_code)

    def rest(
        self,
        rpc: str,
        request: dict[str, Any],
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Outcome:
        route = ROUTE_BY_RPC[rpc]
        if token:
            headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        path, body = route.path, dict(request)
        for name in route.path_params:
            path = path.replace("{" + name + "}", str(body.pop(name)))
        if route.body not in (None, "*"):
            body = body.get(route.body, {})
        data = orjson.dumps(body) if route.body else None
        return self.rest_raw(route.method, path, data, headers)

    # gRPC ------------------------------------------------------------------

    def grpc_raw(
        self, route: Route, payload: bytes, timeout: float | None = None, token: str | None = None
    ) -> Outcome:
        call = self.channel.unary_unary(
            f"/{route.service}/{route.rpc}",
            request_serializer=lambda data: data,
            response_deserializer=route.response.FromString,
        )
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        try:
            response = call(payload, timeout=timeout, metadata=metadata)
        except grpc.RpcError as error:
            failed = cast(grpc.Call, error)  # a failed unary call's error is also its Call
            status = failed.code()
            trailers: dict[str, Any] = {key: value for key, value in failed.trailing_metadata() or ()}
            if GRPC_ERROR_KEY in trailers:
                body = orjson.loads(trailers[GRPC_ERROR_KEY])
                assert ERROR_TABLE[body["code"]].grpc == status
            else:  # raised by the gRPC runtime, before or after Strata's handler
                body = {"code": code_for_grpc(status), "message": failed.details()}
            return Outcome(False, body, status)
        return Outcome(True, message_to_json(response), grpc.StatusCode.OK)

    def grpc(
        self, rpc: str, request: dict[str, Any], timeout: float | None = None, token: str | None = None
    ) -> Outcome:
        route = ROUTE_BY_RPC[rpc]
        message = json_format.ParseDict(request, route.request())
        return self.grpc_raw(route, message.SerializeToString(), timeout, token)

    def both(self, rpc: str, request: dict[str, Any], token: str | None = None) -> tuple[Outcome, Outcome]:
        return self.rest(rpc, request, token=token), self.grpc(rpc, request, token=token)


@dataclass
class Servers:
    store: DictStore
    clients: Clients
    grpc_port: int
    http_port: int
    publisher_token: str


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Decisions from the rule files, profiles in memory, and a rule registry seeded on a SQLite file."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    store = DictStore(PROFILES)
    rules = default_rules()
    decisions = DecisionService.from_files(rules, store)
    profiles = ProfileService(rules.schema, store)
    database_url = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'strata.db'}"
    migrate(database_url)
    engine = make_engine(database_url)
    registry = Registry(RegistryStore(engine), rules.schema)
    seed(registry, RULES_DIR)
    tokens = Tokens(TokenStore(engine))
    publisher_token = tokens.create("e2e-publisher", "publisher")
    previews = Previews(registry, engine, rules.schema)  # over the (empty) profiles table of that file
    operations = Operations(decisions, profiles, registry=registry, access=Access(tokens), previews=previews)
    server, grpc_port = grpc_server.create_server(operations, "127.0.0.1:0", max_workers=8)
    server.start()
    http = make_server("127.0.0.1", 0, create_app(operations), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        clients = Clients(f"http://127.0.0.1:{http.server_port}", channel)
        yield Servers(store, clients, grpc_port, http.server_port, publisher_token)
    finally:
        channel.close()
        http.shutdown()
        server.stop(None)
        engine.dispose()


@pytest.fixture
def clients(servers: Servers) -> Iterator[Clients]:
    """The clients, with the store reset to PROFILES for each test."""
    fresh = DictStore(PROFILES)
    servers.store.profiles = fresh.profiles
    servers.store.delays = {}
    yield servers.clients
