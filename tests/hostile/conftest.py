"""The e2e servers (REST and gRPC over one service) for the hostile-request tests."""

from tests.e2e.conftest import clients, servers

__all__ = ["clients", "servers"]
