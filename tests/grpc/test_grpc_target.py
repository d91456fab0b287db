"""The gRPC target as a real process: health, reflection, limits, garbage input, generated code."""

from __future__ import annotations

import filecmp
import signal
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from bench.clients.grpc_client import GrpcClient
from bench.load.counters import scrape
from bench.load.processes import TargetProcess
from targets.grpc import codegen

Start = Callable[..., TargetProcess]


def raw_unary(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    for name in codegen.OUTPUTS:
        assert filecmp.cmp(tmp_path / name, codegen.GENERATED / name, shallow=False), (
            f"{name} differs from a fresh generation: run `bench codegen` and commit"
        )


def test_health_reports_serving(start: Start) -> None:
    target = start("grpc")
    with grpc.insecure_channel(target.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "library.v1.Library"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_generic_client_discovers_and_calls_through_reflection(start: Start) -> None:
    """What grpcurl does: no compiled stubs, only the reflection service."""
    target = start("grpc")
    with grpc.insecure_channel(target.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = database.get_services()
        assert "library.v1.Library" in services
        assert "grpc.health.v1.Health" in services
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName("library.v1.Library")
        assert {m.name for m in service.methods} >= {
            "AddBook", "GetBook", "DeleteBook", "ListBooksByCategory", "BulkAddBooks", "AddUser", "GetUser",
            "CreateLoan", "ReturnLoan", "GetOverdueLoans", "UpdateLoanStatus",
        }  # fmt: skip
        method = service.methods_by_name["GetBook"]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/library.v1.Library/GetBook",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        book = call(request_class(id=1), timeout=5)
        assert book.id == 1 and book.category == "size-1"
        stream_method = service.methods_by_name["ListBooksByCategory"]
        assert stream_method.server_streaming and not stream_method.client_streaming
        assert service.methods_by_name["UpdateLoanStatus"].client_streaming


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_answers_as_v1_and_v1alpha(start: Start, version: str) -> None:
    """Generic clients ask for grpc.reflection.v1 first; older ones for v1alpha (the messages are the same
    fields and numbers under another package, so the v1alpha classes encode a v1 request byte for byte)."""
    target = start("grpc")
    name = f"grpc.reflection.{version}.ServerReflection"
    with grpc.insecure_channel(target.address) as channel:
        call = channel.stream_stream(
            f"/{name}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="library.v1.Library"),
        ]
        listed, symbol = list(call(iter(requests), timeout=5))
    services = {s.name for s in listed.list_services_response.service}
    assert {"library.v1.Library", "grpc.health.v1.Health", name} <= services
    files = [FileDescriptorProto.FromString(b) for b in symbol.file_descriptor_response.file_descriptor_proto]
    assert any(f.package == "library.v1" and f.service[0].name == "Library" for f in files)


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("/library.v1.Library/GetBook", b"\xff\xff\xff\xff\xff"),  # corrupt varint
        ("/library.v1.Library/AddBook", b"\x12\x02\xff\xfe"),  # title with invalid UTF-8
        ("/library.v1.Library/AddUser", b"\x0a\x10short"),  # length prefix past the end
    ],
)
def test_garbage_message_is_invalid_argument_and_server_keeps_serving(
    start: Start, method: str, payload: bytes
) -> None:
    target = start("grpc", metrics=True)
    assert target.metrics_address is not None
    before = scrape(target.metrics_address)
    with grpc.insecure_channel(target.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            raw_unary(channel, method)(payload, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # An undecodable request of a known method is still a call of it, answered with InvalidArgument.
    served = scrape(target.metrics_address) - before
    operation = method.rsplit("/", 1)[1]
    assert served.calls == {operation: 1} and served.errors == {(operation, "InvalidArgument"): 1}
    client = GrpcClient(target.address)
    assert client.get_book(1).id == 1
    client.close()


def test_garbage_inside_a_client_stream_is_invalid_argument(start: Start) -> None:
    target = start("grpc")
    with grpc.insecure_channel(target.address) as channel:
        call = channel.stream_unary(
            "/library.v1.Library/BulkAddBooks",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as info:
            call(iter([b"\xff\xff\xff"]), timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_message_over_the_size_limit_is_refused(start: Start) -> None:
    target = start("grpc")
    with grpc.insecure_channel(
        target.address, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        big = b"\x12" + _varint(10 * 1024 * 1024) + b"x" * (10 * 1024 * 1024)  # 10 MB title
        with pytest.raises(grpc.RpcError) as info:
            raw_unary(channel, "/library.v1.Library/AddBook")(big, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    client = GrpcClient(target.address)
    assert client.get_book(1).id == 1
    client.close()


def test_unknown_fields_are_ignored(start: Start) -> None:
    target = start("grpc")
    with grpc.insecure_channel(target.address) as channel:
        # id=1 followed by an unknown field 99 (varint 7): protobuf keeps unknown fields, the call succeeds
        reply = raw_unary(channel, "/library.v1.Library/GetBook")(b"\x08\x01\x98\x06\x07", timeout=5)
        assert reply.startswith(b"\x08\x01")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(start: Start, sig: signal.Signals) -> None:
    target = start("grpc")
    target.process.send_signal(sig)
    assert target.process.wait(10) == 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
