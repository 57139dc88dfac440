"""strata_client: ask Strata for decisions over REST or gRPC through one interface.

    from strata_client import StrataClient
    client = StrataClient.rest("http://localhost:8080")   # or StrataClient.grpc("localhost:50051")
    decision = client.classify_lifecycle(user_id="u1")
    decision.stage, decision.explanation[0].reason

Results are the protobuf messages of the contract (typed, with stubs) whichever
transport carried them; failures are ``StrataError`` with a stable ``code``.
Request ids: pass ``request_id=`` to any call; pass ``reply=Reply()`` to read the
one the server answered with (on failures: ``StrataError.request_id``).
"""

from strata_client._client import Reply, StrataClient
from strata_client._errors import StrataError
from strata_client._pb.decision_pb2 import (
    EXPLAIN_FULL,
    EXPLAIN_NONE,
    EXPLAIN_RULES,
    DecideResponse,
    IncentiveDecision,
    InterventionDecision,
    LifecycleDecision,
    SegmentDecision,
)

__all__ = [
    "EXPLAIN_FULL",
    "EXPLAIN_NONE",
    "EXPLAIN_RULES",
    "DecideResponse",
    "IncentiveDecision",
    "InterventionDecision",
    "LifecycleDecision",
    "Reply",
    "SegmentDecision",
    "StrataClient",
    "StrataError",
]
