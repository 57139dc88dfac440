"""RequestChecker.check_request: a message too small to break a size limit passes unwalked.

A batch's requests are checked by their byte size when every check on them is a size (a string
of n characters takes at least n bytes, a list of n items at least n). Over requests with strings
and lists around small limits, the checker must refuse exactly what the full walk refuses, with
the same error and field.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strata.api.strata.v1 import decision_pb2 as pb
from strata.config import RequestLimits
from strata.errors import StrataError
from strata.transport.limits import RequestChecker

LIMITS = RequestLimits(max_string_chars=12, max_list_items=5)
TEXT = st.text(alphabet="aé€😀", max_size=14)  # 1 to 4 bytes a character


def _walking(limits: RequestLimits) -> RequestChecker:
    """A checker that walks every message, whatever its size."""
    checker = RequestChecker(limits)
    checker._small = -1
    return checker


@st.composite
def batches(draw: st.DrawFn) -> pb.DecideBatchRequest:
    batch = pb.DecideBatchRequest()
    for _ in range(draw(st.integers(0, 6))):
        item = batch.requests.add(user_id=draw(TEXT), rulesets=draw(st.lists(TEXT, max_size=7)))
        if draw(st.booleans()):
            item.event.type = draw(TEXT)
    return batch


def _outcome(checker: RequestChecker, message: pb.DecideBatchRequest) -> tuple[str, str] | None:
    try:
        checker.check_request(message)
    except StrataError as exc:
        return exc.message, str(exc.problems[0])
    return None


@settings(max_examples=300, deadline=None)
@given(batches())
def test_checking_by_size_refuses_what_the_walk_refuses(message: pb.DecideBatchRequest) -> None:
    assert _outcome(RequestChecker(LIMITS), message) == _outcome(_walking(LIMITS), message)
