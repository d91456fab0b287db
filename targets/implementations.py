"""The protocols a target can serve and the implementations of the contract (which protocols each serves)."""

from __future__ import annotations

__all__ = ["IMPLEMENTATIONS", "PROTOCOLS"]

PROTOCOLS = ("grpc", "rest", "soap")
# `python` is this package (the one core behind three adapters); `node` is targets/node, the Library gRPC
# service on @grpc/grpc-js; `go` is targets/go, the same service on grpc-go (README, "Starting a target").
IMPLEMENTATIONS: dict[str, tuple[str, ...]] = {"python": PROTOCOLS, "node": ("grpc",), "go": ("grpc",)}
