"""One handler per RPC, wire message in and wire message out, shared by both transports.

The four one-kind RPCs (``ClassifyLifecycle``...) are one handler over a table,
``SINGLE_KIND``, as their use cases are one method over a table in ``DecisionService``.

The gRPC servicers and the REST routes are loops over ``ROUTES`` that call
``Operations.authorize`` with the caller's credentials, then
``Operations.call``: parsing the transport's framing is all they do. That is
what makes "the same request gets the same answer over REST and gRPC" (and
the same refusal) true by construction; the e2e tests check it anyway.

``Decide`` and ``DecideBatch``, the hot RPCs, skip the response message: REST gets
its JSON document (``json_handler``, ``convert_json``) and gRPC its bytes
(``wire_handler``, ``convert_wire``) straight from the domain's answers, each
checked against ``convert``'s messages by the unit tests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from strata import metrics
from strata.access.tokens import Access, Principal, Role
from strata.api.strata.v1 import decision_pb2 as pb
from strata.api.strata.v1 import preview_pb2 as preview_pb
from strata.api.strata.v1 import profile_pb2 as profile_pb
from strata.api.strata.v1 import registry_pb2 as registry_pb
from strata.config import RequestLimits
from strata.decisions import DecisionService
from strata.errors import Unavailable
from strata.preview.service import Previews
from strata.profiles import ProfileService
from strata.registry.service import Registry
from strata.transport import convert, convert_json, convert_wire
from strata.transport.context import Context
from strata.transport.limits import RequestChecker
from strata.transport.preview_operations import preview
from strata.transport.registry_operations import RegistryOperations

DECISION_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
PROFILE_SERVICE = profile_pb.DESCRIPTOR.services_by_name["ProfileService"].full_name
REGISTRY_SERVICE = registry_pb.DESCRIPTOR.services_by_name["RegistryService"].full_name
PREVIEW_SERVICE = preview_pb.DESCRIPTOR.services_by_name["PreviewService"].full_name


@dataclass(frozen=True)
class Route:
    """An RPC and its REST binding, in grpc-gateway's terms.

    ``body`` is ``"*"`` (the body is the whole request message), a field name
    (the body is that field; path parameters fill the rest), or None (no body).
    ``role`` is what the caller's token must grant (see ``Access``).
    """

    service: str
    rpc: str
    method: str
    path: str  # OpenAPI template syntax: /v1/profiles/{user_id}
    request: type[Message]
    response: type[Message]
    summary: str
    body: str | None = "*"
    role: Role = Role.READER

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def query_params(self) -> dict[str, FieldDescriptor]:
        """For a route without a body, the fields a query string may set, by parameter name.

        As in grpc-gateway: every field not bound by the path. The name is the
        field's, or its ``json_name`` when the proto sets one (``from`` for
        ``from_version``).
        """
        if self.body is not None:
            return {}
        descriptor = cast(Descriptor, self.request.DESCRIPTOR)
        return {
            _query_name(field): field for field in descriptor.fields if field.name not in self.path_params
        }


def _query_name(field: FieldDescriptor) -> str:
    camel = re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), field.name)
    return field.json_name if field.json_name != camel else field.name


ROUTES: tuple[Route, ...] = (
    Route(
        DECISION_SERVICE, "ClassifyLifecycle", "POST", "/v1/lifecycle:classify",
        pb.ClassifyLifecycleRequest, pb.LifecycleDecision, "The user's lifecycle stage",
    ),
    Route(
        DECISION_SERVICE, "AssignSegment", "POST", "/v1/segment:assign",
        pb.AssignSegmentRequest, pb.SegmentDecision, "The user's segment, scores and tags",
    ),
    Route(
        DECISION_SERVICE, "EvaluateIncentive", "POST", "/v1/incentive:evaluate",
        pb.EvaluateIncentiveRequest, pb.IncentiveDecision, "What one event earns the user",
    ),
    Route(
        DECISION_SERVICE, "RecommendIntervention", "POST", "/v1/intervention:recommend",
        pb.RecommendInterventionRequest, pb.InterventionDecision, "The interventions to run for the user",
    ),
    Route(
        DECISION_SERVICE, "Decide", "POST", "/v1/decide",
        pb.DecideRequest, pb.DecideResponse, "Several decisions for one user",
    ),
    Route(
        DECISION_SERVICE, "DecideBatch", "POST", "/v1/decide:batch",
        pb.DecideBatchRequest, pb.DecideBatchResponse, "Decisions for many users",
    ),
    Route(
        PROFILE_SERVICE, "UpsertProfile", "PUT", "/v1/profiles/{user_id}",
        profile_pb.UpsertProfileRequest, profile_pb.Profile, "Create or replace a stored profile",
        body="profile",
    ),
    Route(
        PROFILE_SERVICE, "GetProfile", "GET", "/v1/profiles/{user_id}",
        profile_pb.GetProfileRequest, profile_pb.Profile, "A stored profile", body=None,
    ),
    Route(
        PROFILE_SERVICE, "DeleteProfile", "DELETE", "/v1/profiles/{user_id}",
        profile_pb.DeleteProfileRequest, profile_pb.DeleteProfileResponse, "Delete a stored profile",
        body=None,
    ),
    Route(
        REGISTRY_SERVICE, "PublishVersion", "POST", "/v1/rulesets/{name}/versions",
        registry_pb.PublishVersionRequest, registry_pb.PublishVersionResponse,
        "Validate, test and store a rule file as the ruleset's next version", role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "ListRulesets", "GET", "/v1/rulesets",
        registry_pb.ListRulesetsRequest, registry_pb.ListRulesetsResponse,
        "Every ruleset with its active version, aliases and revision", body=None,
    ),
    Route(
        REGISTRY_SERVICE, "ListVersions", "GET", "/v1/rulesets/{name}/versions",
        registry_pb.ListVersionsRequest, registry_pb.ListVersionsResponse,
        "A ruleset and its versions", body=None,
    ),
    Route(
        REGISTRY_SERVICE, "GetVersion", "GET", "/v1/rulesets/{name}/versions/{version}",
        registry_pb.GetVersionRequest, registry_pb.RulesetVersion, "One version with its content",
        body=None,
    ),
    Route(
        REGISTRY_SERVICE, "DiffVersions", "GET", "/v1/rulesets/{name}/diff",
        registry_pb.DiffVersionsRequest, registry_pb.DiffVersionsResponse,
        "A unified diff of two versions", body=None,
    ),
    Route(
        REGISTRY_SERVICE, "Activate", "POST", "/v1/rulesets/{name}:activate",
        registry_pb.ActivateRequest, registry_pb.Ruleset, "Make a version the one that answers",
        role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "Rollback", "POST", "/v1/rulesets/{name}:rollback",
        registry_pb.RollbackRequest, registry_pb.Ruleset,
        "Back to the version active before the last activation", role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "SetAlias", "PUT", "/v1/rulesets/{name}/aliases/{alias}",
        registry_pb.SetAliasRequest, registry_pb.Ruleset, "Point an alias at a version",
        role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "SetSplit", "POST", "/v1/rulesets/{name}:split",
        registry_pb.SetSplitRequest, registry_pb.Ruleset,
        "Split a ruleset's traffic between versions", role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "EndSplit", "POST", "/v1/rulesets/{name}:endSplit",
        registry_pb.EndSplitRequest, registry_pb.Ruleset,
        "End a ruleset's traffic split", role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "SetShadow", "POST", "/v1/rulesets/{name}:shadow",
        registry_pb.SetShadowRequest, registry_pb.Ruleset,
        "Run a candidate version beside the answering one for a share of the users",
        role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "EndShadow", "POST", "/v1/rulesets/{name}:endShadow",
        registry_pb.EndShadowRequest, registry_pb.Ruleset,
        "Stop running a ruleset's shadow candidate", role=Role.PUBLISHER,
    ),
    Route(
        REGISTRY_SERVICE, "ListAudit", "GET", "/v1/audit",
        registry_pb.ListAuditRequest, registry_pb.ListAuditResponse,
        "Every registry change, newest first", body=None,
    ),
    Route(
        PREVIEW_SERVICE, "Preview", "POST", "/v1/rulesets/{name}:preview",
        preview_pb.PreviewRequest, preview_pb.PreviewResponse,
        "How a candidate version would reclassify every stored user",
    ),
)  # fmt: skip


#: The RPCs that ask one kind's question, the kind each asks and what puts its answer on the wire.
SINGLE_KIND: dict[str, tuple[str, Callable[[Any], convert.DecisionMessage]]] = {
    "ClassifyLifecycle": ("lifecycle", convert.lifecycle_to_proto),
    "AssignSegment": ("segment", convert.segment_to_proto),
    "EvaluateIncentive": ("incentive", convert.incentive_to_proto),
    "RecommendIntervention": ("intervention", convert.intervention_to_proto),
}

Handler = Callable[[Any, Context], Message]
JsonHandler = Callable[[Any, Context], dict[str, Any]]
WireHandler = Callable[[Any, Context], bytes]
R = TypeVar("R")


def _unavailable(what: str) -> Handler:
    def refuse(request: Message, context: Context) -> Message:
        raise Unavailable(f"this server has no {what}")

    return refuse


class Operations:
    """The RPCs over the use cases, and who may call each.

    Without a profile store, a registry or previews, their RPCs answer ``unavailable``.
    Every request is checked against ``limits`` before its RPC runs.
    """

    def __init__(
        self,
        decisions: DecisionService,
        profiles: ProfileService | None = None,
        *,
        registry: Registry | None = None,
        access: Access | None = None,
        previews: Previews | None = None,
        limits: RequestLimits | None = None,
    ) -> None:
        self.decisions = decisions
        self.limits = limits or RequestLimits()
        self._checker = RequestChecker(self.limits)
        self.profiles = profiles
        self.access = access or Access(None)
        self._roles = {route.rpc: route.role for route in ROUTES}
        self._latency = {route.rpc: metrics.LATENCY.labels(route.rpc) for route in ROUTES}
        registry_handlers = RegistryOperations(registry).handlers() if registry else {}
        self._by_rpc: dict[str, Handler] = {
            route.rpc: registry_handlers.get(route.rpc, _unavailable("rule registry"))
            for route in ROUTES
            if route.service == REGISTRY_SERVICE
        }
        self._by_rpc |= {
            rpc: partial(self.decide_kind, kind, to_proto) for rpc, (kind, to_proto) in SINGLE_KIND.items()
        }
        self._by_rpc |= {
            "UpsertProfile": self.upsert_profile,
            "GetProfile": self.get_profile,
            "DeleteProfile": self.delete_profile,
            "Preview": partial(preview, previews) if previews else _unavailable("impact previews"),
        }
        self._calls = {
            rpc: self._timed(rpc, self._checker.check_request, handler)
            for rpc, handler in self._by_rpc.items()
        }
        self._json_by_rpc: dict[str, JsonHandler] = {
            "Decide": self.decide_json,
            "DecideBatch": self.decide_batch_json,
        }
        self._wire_by_rpc: dict[str, WireHandler] = {
            "Decide": self.decide_wire,
            "DecideBatch": self.decide_batch_wire,
        }

    def has_rulesets(self) -> bool:
        """Rulesets are loaded, so decisions can be answered: what both transports call ready.

        The database is deliberately not part of it: decisions with inline
        profiles are answered while it is down, and taking every replica out
        of the load balancer during a database outage would refuse them too.
        """
        return bool(self.decisions.rulesets.current().rulesets)

    def authorize(self, rpc: str, authorization: str | None) -> Principal:
        """The caller, if its credentials (an ``Authorization`` value) allow ``rpc``; raises otherwise."""
        return self.access.authorize(self._roles[rpc], authorization)

    def call(self, rpc: str, request: Message, context: Context) -> Message:
        """Answer ``rpc``, checked against the limits first; its latency is observed whether it answers
        or fails.

        ``Decide`` and ``DecideBatch`` answer through ``json_handler`` and ``wire_handler`` instead.
        """
        return self._calls[rpc](request, context)

    def _timed(
        self, rpc: str, check: Callable[[Any], None], handler: Callable[[Any, Context], R]
    ) -> Callable[[Any, Context], R]:
        """``handler`` with the request ``check``ed against the limits first, its latency observed."""
        latency = self._latency[rpc]

        def timed(request: Any, context: Context) -> R:
            started = time.perf_counter()
            try:
                check(request)
                return handler(request, context)
            finally:
                latency.observe(time.perf_counter() - started)

        return timed

    def json_handler(self, rpc: str) -> JsonHandler | None:
        """For REST, an RPC that takes and gives JSON without wire messages in between, if it
        has one (``Decide``, ``DecideBatch``: see ``convert_json``). Its documents are the same,
        and so are its limits (``RequestChecker.check_json``)."""
        handler = self._json_by_rpc.get(rpc)
        return None if handler is None else self._timed(rpc, self._checker.check_json, handler)

    def wire_handler(self, rpc: str) -> WireHandler | None:
        """For gRPC, an RPC that gives its response's bytes without building the response message,
        if it has one (``Decide``, ``DecideBatch``: see ``convert_wire``). The bytes are the same
        message's, and the request is checked as ``call`` checks it."""
        handler = self._wire_by_rpc.get(rpc)
        return None if handler is None else self._timed(rpc, self._checker.check_request, handler)

    def decide_kind(
        self,
        kind: str,
        to_proto: Callable[[Any], convert.DecisionMessage],
        request: convert.SingleRequest,
        context: Context,
    ) -> Message:
        """A one-kind RPC (see ``SINGLE_KIND``): ``kind``'s decision as ``to_proto`` puts it on the wire."""
        answer = self.decisions.decide_kind(
            kind, convert.decision_request(request, self._checker), context.deadline, context.request_id
        )
        return convert.versioned(to_proto(answer.decision), answer)

    def decide_wire(self, request: pb.DecideRequest, context: Context) -> bytes:
        """A ``DecideResponse``'s bytes."""
        return convert_wire.decide_response(
            self.decisions.decide(
                convert.decide_request(request, self._checker), context.deadline, context.request_id
            ),
            request.explain,
        )

    def decide_json(self, data: Any, context: Context) -> dict[str, Any]:
        request, explain = convert_json.decide_request(data, self._checker)
        return convert_json.decide_response(
            self.decisions.decide(request, context.deadline, context.request_id), explain
        )

    def decide_batch_json(self, data: Any, context: Context) -> dict[str, Any]:
        requests, explain = convert_json.batch_request(data, self._checker)
        return convert_json.batch_response(
            self.decisions.decide_batch(requests, context.deadline, context.request_id), explain
        )

    def decide_batch_wire(self, request: pb.DecideBatchRequest, context: Context) -> bytes:
        """A ``DecideBatchResponse``'s bytes."""
        requests = convert.batch_request(request, self._checker)
        return convert_wire.batch_response(
            self.decisions.decide_batch(requests, context.deadline, context.request_id),
            [item.explain for item in request.requests],
        )

    def _profiles(self) -> ProfileService:
        if self.profiles is None:
            raise Unavailable("this server has no profile store")
        return self.profiles

    def upsert_profile(
        self, request: profile_pb.UpsertProfileRequest, context: Context
    ) -> profile_pb.Profile:
        profile = self._checker.struct_to_dict(request.profile, "profile")
        return convert.profile_to_proto(self._profiles().upsert(request.user_id, profile))

    def get_profile(self, request: profile_pb.GetProfileRequest, context: Context) -> profile_pb.Profile:
        return convert.profile_to_proto(self._profiles().get(request.user_id))

    def delete_profile(
        self, request: profile_pb.DeleteProfileRequest, context: Context
    ) -> profile_pb.DeleteProfileResponse:
        self._profiles().delete(request.user_id)
        return profile_pb.DeleteProfileResponse(user_id=request.user_id)
