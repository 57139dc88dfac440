"""What a transport knows about a call besides its message: its deadline and its caller."""

from __future__ import annotations

from dataclasses import dataclass

from strata.access.tokens import ANONYMOUS, Principal


@dataclass(frozen=True)
class Context:
    """A call's deadline (a ``time.monotonic()`` instant, or None) and who is calling."""

    deadline: float | None = None
    principal: Principal = ANONYMOUS
