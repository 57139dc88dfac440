"""End-to-end tests: real gRPC and HTTP servers started by the tests."""
