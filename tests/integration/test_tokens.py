"""Tokens and the access policy on SQLite and Postgres; then both transports refusing and accepting."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import select
from strata_client import StrataClient
from strata_client import StrataError as ClientError

from strata.access.store import TokenStore
from strata.access.tokens import ANONYMOUS, Access, Principal, Role, Tokens
from strata.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from strata.store import make_engine, migrate
from strata.store.models import API_TOKENS
from tests.fakes import AS_OF
from tests.integration.conftest import LiveServers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[TokenStore]:
    migrate(database_url)
    engine = make_engine(database_url, pool_size=2)
    try:
        yield TokenStore(engine)
    finally:
        engine.dispose()


def test_a_token_is_shown_once_and_stored_only_as_its_hash(store: TokenStore, database_url: str) -> None:
    token = Tokens(store).create("ci", "publisher")
    assert token.startswith("strata_") and len(token) > 40
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(API_TOKENS)).all()
    engine.dispose()
    assert [(row.name, row.role, row.revoked) for row in rows] == [("ci", "publisher", False)]
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(rows)


def test_names_and_roles_are_checked(store: TokenStore) -> None:
    tokens = Tokens(store)
    tokens.create("ci", "reader")
    with pytest.raises(InvalidArgument, match="a token named 'ci' exists"):
        tokens.create("ci", "publisher")
    with pytest.raises(InvalidArgument, match="unknown role 'admin'"):
        tokens.create("ops", "admin")
    with pytest.raises(InvalidArgument, match="invalid token name"):
        tokens.create("has space", "reader")
    with pytest.raises(NotFound):
        tokens.revoke("nobody")


def test_a_bearer_token_names_its_holder_until_revoked(store: TokenStore) -> None:
    clock = Clock()
    tokens = Tokens(store, ttl=5, clock=clock)
    token = tokens.create("ana", "publisher")
    assert tokens.authenticate(f"Bearer {token}") == Principal("ana", Role.PUBLISHER)
    assert tokens.authenticate(f"bearer   {token} ") == Principal("ana", Role.PUBLISHER)
    tokens.revoke("ana")
    assert tokens.authenticate(f"Bearer {token}").name == "ana"  # remembered for the ttl...
    clock.now = 6
    with pytest.raises(Unauthenticated, match="not valid"):  # ...then refused
        tokens.authenticate(f"Bearer {token}")
    assert [(r.name, r.revoked) for r in tokens.records()] == [("ana", True)]
    for bad in (None, "", f"Basic {token}", "Bearer strata_made_up"):
        with pytest.raises(Unauthenticated):
            tokens.authenticate(bad)


def test_publishing_needs_a_publisher_and_reading_a_token_only_when_required(store: TokenStore) -> None:
    tokens = Tokens(store)
    publisher = f"Bearer {tokens.create('pub', 'publisher')}"
    reader = f"Bearer {tokens.create('read', 'reader')}"
    relaxed, strict = Access(tokens), Access(tokens, require_tokens=True)
    assert relaxed.authorize(Role.READER, None) is ANONYMOUS
    assert strict.authorize(Role.READER, reader) == Principal("read", Role.READER)
    assert strict.authorize(Role.READER, publisher).name == "pub"  # a publisher may read
    assert relaxed.authorize(Role.PUBLISHER, publisher).name == "pub"
    with pytest.raises(Unauthenticated):
        strict.authorize(Role.READER, None)
    with pytest.raises(Unauthenticated):
        relaxed.authorize(Role.PUBLISHER, None)
    with pytest.raises(PermissionDenied, match="needs a publisher token; 'read' is a reader token"):
        relaxed.authorize(Role.PUBLISHER, reader)


DECISION = {"profile": {"user_id": "u1", "activity_dates": ["2026-03-10"]}, "as_of": AS_OF}


def test_both_transports_refuse_decisions_without_a_valid_token_when_required(live: LiveServers) -> None:
    clients = live.clients
    for outcome in clients.both("ClassifyLifecycle", DECISION):
        assert outcome.code == "unauthenticated"
    rest, by_grpc = clients.both("ClassifyLifecycle", DECISION, token="strata_not_a_token")
    assert (rest.status, by_grpc.status) == (401, grpc.StatusCode.UNAUTHENTICATED)
    challenge = clients.http.post(f"{clients.base_url}/v1/lifecycle:classify", json=DECISION, timeout=10)
    assert challenge.headers["WWW-Authenticate"] == 'Bearer realm="strata"'

    token = live.token("reader")
    for outcome in clients.both("ClassifyLifecycle", DECISION, token=token):
        assert outcome.ok and outcome.body["version"] == 1 and outcome.body["version_reason"] == "active"


def test_the_client_sends_its_token(live: LiveServers) -> None:
    token = live.token("reader")
    for client in (
        StrataClient.rest(f"http://127.0.0.1:{live.http_port}", token=token, timeout=10),
        StrataClient.grpc(f"127.0.0.1:{live.grpc_port}", token=token, timeout=10),
    ):
        with client:
            assert client.classify_lifecycle(profile=DECISION["profile"]).version == 1
    with (
        StrataClient.rest(f"http://127.0.0.1:{live.http_port}") as anonymous,
        pytest.raises(ClientError) as caught,
    ):
        anonymous.classify_lifecycle(profile=DECISION["profile"])
    assert caught.value.code == "unauthenticated"
