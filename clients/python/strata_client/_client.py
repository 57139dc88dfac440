"""One client, two backends: the request messages are built once, here."""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from strata_client._backends import REQUEST_ID_KEY, Backend, GrpcBackend, RestBackend
from strata_client._errors import StrataError
from strata_client._pb import decision_pb2 as pb

M = TypeVar("M", bound=Message)
#: The server's rule for a caller's request id, checked here too: such an id could not be sent as
#: a header or as metadata (each transport would fail its own way), and the refusal is the server's.
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
_REQUEST_ID_RULE = "1 to 128 printable ASCII characters, no spaces"


@dataclass
class Reply:
    """Filled in by a call it is passed to (``reply=``): what the answer carried besides its message.

    The answers are the contract's protobuf messages, which hold no more than
    their fields, so the request id the server answered with comes back here
    (and on ``StrataError.request_id`` when the call fails).
    """

    request_id: str | None = None


def _fill(
    request: M,
    user_id: str | None,
    profile: Mapping[str, Any] | None,
    as_of: dt.datetime | None,
) -> M:
    if user_id:
        request.user_id = user_id  # type: ignore[attr-defined]
    if profile is not None:
        struct = struct_pb2.Struct()
        struct.update(dict(profile))
        request.profile.CopyFrom(struct)  # type: ignore[attr-defined]
    if as_of is not None:
        request.as_of.FromDatetime(as_of.astimezone(dt.UTC))  # type: ignore[attr-defined]
    return request


class StrataClient:
    """Decisions from a Strata server, with a deadline per call and retries on transient errors.

    Every call takes ``request_id`` (sent as ``X-Request-Id``; gRPC: ``x-request-id``
    metadata; the server makes one up when none is given; it names the call's decision log
    entries) and ``reply``, a ``Reply`` the call fills with the request id the server
    answered with.
    """

    def __init__(self, backend: Backend, *, timeout: float = 2.0, retries: int = 2) -> None:
        self._backend = backend
        self.timeout = timeout
        self.retries = retries

    @classmethod
    def rest(cls, base_url: str, *, token: str | None = None, **options: Any) -> StrataClient:
        """Over REST; ``token`` is sent as ``Authorization: Bearer`` (servers requiring tokens)."""
        return cls(RestBackend(base_url, token), **options)

    @classmethod
    def grpc(cls, target: str, *, token: str | None = None, **options: Any) -> StrataClient:
        """Over gRPC; ``token`` is sent as ``authorization: Bearer`` metadata."""
        return cls(GrpcBackend(target, token), **options)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> StrataClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        request: Message,
        response: Callable[[], M],
        request_id: str | None,
        reply: Reply | None,
    ) -> M:
        """Call with a deadline; retry transient failures with jittered backoff, under the same
        request id when the caller gave one (else the server names each attempt)."""
        if request_id and not _REQUEST_ID.fullmatch(request_id):
            problem = {"message": _REQUEST_ID_RULE, "field": REQUEST_ID_KEY}
            raise StrataError("invalid_argument", f"invalid request id: {_REQUEST_ID_RULE}", [problem])
        for attempt in range(self.retries + 1):
            try:
                answer, answered = self._backend.call(method, request, response(), self.timeout, request_id)
                if reply is not None:
                    reply.request_id = answered
                return answer
            except StrataError as exc:
                if not exc.transient or attempt == self.retries:
                    raise
                time.sleep(min(1.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def classify_lifecycle(
        self, user_id: str | None = None, *, profile: Mapping[str, Any] | None = None,
        as_of: dt.datetime | None = None, ruleset: str = "", request_id: str | None = None,
        reply: Reply | None = None,
    ) -> pb.LifecycleDecision:  # fmt: skip
        request = _fill(pb.ClassifyLifecycleRequest(ruleset=ruleset), user_id, profile, as_of)
        return self._call("ClassifyLifecycle", request, pb.LifecycleDecision, request_id, reply)

    def assign_segment(
        self, user_id: str | None = None, *, profile: Mapping[str, Any] | None = None,
        as_of: dt.datetime | None = None, ruleset: str = "", request_id: str | None = None,
        reply: Reply | None = None,
    ) -> pb.SegmentDecision:  # fmt: skip
        request = _fill(pb.AssignSegmentRequest(ruleset=ruleset), user_id, profile, as_of)
        return self._call("AssignSegment", request, pb.SegmentDecision, request_id, reply)

    def evaluate_incentive(
        self, event_type: str, user_id: str | None = None, *, profile: Mapping[str, Any] | None = None,
        as_of: dt.datetime | None = None, ruleset: str = "", count: int = 1, at: dt.datetime | None = None,
        request_id: str | None = None, reply: Reply | None = None,
    ) -> pb.IncentiveDecision:  # fmt: skip
        request = _fill(pb.EvaluateIncentiveRequest(ruleset=ruleset), user_id, profile, as_of)
        request.event.type = event_type
        request.event.count = count
        if at is not None:
            request.event.at.FromDatetime(at.astimezone(dt.UTC))
        return self._call("EvaluateIncentive", request, pb.IncentiveDecision, request_id, reply)

    def recommend_intervention(
        self, user_id: str | None = None, *, profile: Mapping[str, Any] | None = None,
        as_of: dt.datetime | None = None, ruleset: str = "", request_id: str | None = None,
        reply: Reply | None = None,
    ) -> pb.InterventionDecision:  # fmt: skip
        request = _fill(pb.RecommendInterventionRequest(ruleset=ruleset), user_id, profile, as_of)
        return self._call("RecommendIntervention", request, pb.InterventionDecision, request_id, reply)

    def decide(
        self, user_id: str | None = None, *, rulesets: Sequence[str], profile: Mapping[str, Any] | None = None,
        as_of: dt.datetime | None = None, explain: pb.Explain.ValueType = pb.EXPLAIN_FULL,
        request_id: str | None = None, reply: Reply | None = None,
    ) -> pb.DecideResponse:  # fmt: skip
        """Several decisions at once. ``explain=pb.EXPLAIN_RULES`` leaves the facts' values out of
        the explanation, ``pb.EXPLAIN_NONE`` the explanation: cheaper for the server to build."""
        request = _fill(pb.DecideRequest(rulesets=list(rulesets), explain=explain), user_id, profile, as_of)
        return self._call("Decide", request, pb.DecideResponse, request_id, reply)
