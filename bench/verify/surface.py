"""Protocol surface checks: what generic clients need besides the operations (health, discovery, contracts).

gRPC: the standard health service answers SERVING, and server reflection answers as grpc.reflection.v1 and
v1alpha with the Library service. REST: /healthz, and /openapi.json is an OpenAPI 3.1 document naming every
operation. SOAP: ?wsdl is a WSDL naming every operation.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from lxml import etree  # type: ignore[import-untyped]  # no stubs in the dev environment

from bench.clients import ClientError, make_client
from bench.verify.suite import CaseResult, TargetReport
from targets.core import OPERATIONS

__all__ = ["probe_target", "surface_checks"]

_SURFACE = "(surface)"
_LIBRARY = "library.v1.Library"
_WSDL = "http://schemas.xmlsoap.org/wsdl/"


def _check(name: str, probe: Callable[[], str]) -> CaseResult:
    try:
        reason = probe()
    except (grpc.RpcError, httpx.HTTPError, ValueError, etree.XMLSyntaxError) as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    return CaseResult(name, _SURFACE, frozenset(), not reason, reason)


def _grpc(address: str, timeout_s: float) -> list[CaseResult]:
    with grpc.insecure_channel(address) as channel:

        def health() -> str:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", _LIBRARY):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    return f"health of {service or 'the server'!r} is {reply.status}, not SERVING"
            return ""

        def reflection(version: str) -> Callable[[], str]:
            def probe() -> str:
                # v1 and v1alpha messages have the same fields and numbers: the v1alpha classes encode both.
                call = channel.stream_stream(
                    f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
                )
                request = reflection_pb2.ServerReflectionRequest(list_services="")
                replies = list(call(iter([request]), timeout=timeout_s))
                services = {s.name for r in replies for s in r.list_services_response.service}
                return "" if _LIBRARY in services else f"lists {sorted(services)}, not {_LIBRARY}"

            return probe

        return [
            _check("grpc-health-serving", health),
            _check("grpc-reflection-v1", reflection("v1")),
            _check("grpc-reflection-v1alpha", reflection("v1alpha")),
        ]


def _rest(address: str, timeout_s: float) -> list[CaseResult]:
    with httpx.Client(base_url=f"http://{address}", timeout=timeout_s) as http:

        def healthz() -> str:
            response = http.get("/healthz")
            return "" if response.status_code == 200 else f"/healthz answered {response.status_code}"

        def openapi() -> str:
            document = http.get("/openapi.json").json()
            if not str(document.get("openapi", "")).startswith("3.1"):
                return f"openapi is {document.get('openapi')!r}, not 3.1.x"
            named = {op.get("operationId") for item in document["paths"].values() for op in item.values()}
            missing = sorted(set(OPERATIONS) - named)
            return f"operations missing from /openapi.json: {missing}" if missing else ""

        return [_check("rest-healthz", healthz), _check("rest-openapi-3.1-every-operation", openapi)]


def _soap(address: str, timeout_s: float) -> list[CaseResult]:
    def wsdl() -> str:
        response = httpx.get(f"http://{address}/?wsdl", timeout=timeout_s)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.fromstring(response.content, parser)
        named = {op.get("name") for op in root.iter(f"{{{_WSDL}}}operation")}
        missing = sorted(set(OPERATIONS) - named)
        return f"operations missing from the WSDL: {missing}" if missing else ""

    return [_check("soap-wsdl-every-operation", wsdl)]


def surface_checks(protocol: str, address: str, timeout_s: float = 10.0) -> list[CaseResult]:
    checks = {"grpc": _grpc, "rest": _rest, "soap": _soap}
    return checks[protocol](address, timeout_s)


def probe_target(
    label: str, protocol: str, address: str, *, client_kind: str, timeout_s: float
) -> TargetReport:
    """What can be checked on a target that must not be changed (an external benchmark target): the protocol
    surface, and that it serves a seeded dataset (book 1 of category size-1, as every seed makes it)."""
    report = TargetReport(label, protocol, client_kind)
    client = make_client(client_kind, address, timeout_s=timeout_s)
    try:
        book = client.get_book(1)
        reason = "" if book.category == "size-1" else f"book 1 is in {book.category!r}, not the seeded size-1"
    except ClientError as exc:
        reason = f"GetBook(1): {exc}"
    finally:
        client.close()
    report.results.append(CaseResult("seeded-dataset", "GetBook", frozenset({"dataset"}), not reason, reason))
    report.results.extend(surface_checks(protocol, address, timeout_s))
    return report
