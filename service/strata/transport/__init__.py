"""Transport adapters: parse a request, call the use case, convert the result.

gRPC (``grpc_server``) and REST (``http``) share one operation per RPC
(``operations``), one converter (``convert``) and one error table
(``errors``), so the same request gets the same answer, or the same error,
over either.
"""
