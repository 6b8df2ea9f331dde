"""A client Kauri did not write: the stock Python gRPC tools (grpcio,
grpcio-health-checking, grpcio-reflection) against one node, over mutual
TLS. node/tests/grpc_conventions.rs runs it (scripts/python-tools.sh makes
the virtualenv); it can also be run by hand against a dev cluster:

    python stock_grpc.py --addr 127.0.0.1:50051 --ca ca.pem \
        --cert monitor.pem --key monitor.key check ""

Each command prints one JSON object per line on stdout; the last line is
the result. It exits 0 when the command did what it was asked, 1 when an
expected state was not reached in time, 2 on other errors (with the reason
on stderr). Every call has a deadline.
"""

import argparse
import json
import sys
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

# Deadline of one call, in seconds.
CALL_TIMEOUT_S = 5.0
# Spacing of Check polls while waiting for a status.
POLL_INTERVAL_S = 0.2

STATUS_NAMES = health_pb2.HealthCheckResponse.ServingStatus.Name


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def fail(code, why):
    print(f"stock_grpc: {why}", file=sys.stderr, flush=True)
    sys.exit(code)


def channel(args):
    ca = open(args.ca, "rb").read()
    if args.no_cert:
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=open(args.key, "rb").read(),
            certificate_chain=open(args.cert, "rb").read(),
        )
    options = []
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))
    return grpc.secure_channel(args.addr, creds, options=options)


def check_once(stub, service):
    """The status name, or `error:CODE` when the call fails."""
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
        return STATUS_NAMES(reply.status)
    except grpc.RpcError as e:
        return f"error:{e.code().name}"


def cmd_check(args, chan):
    """Checks each service once; with --until, polls until all have that status."""
    stub = health_pb2_grpc.HealthStub(chan)
    deadline = time.monotonic() + args.within
    while True:
        statuses = {s: check_once(stub, s) for s in args.services}
        if args.until is None or all(v == args.until for v in statuses.values()):
            emit({"statuses": statuses})
            return
        if time.monotonic() > deadline:
            emit({"statuses": statuses})
            fail(1, f"not all of {args.services} were {args.until} within {args.within} s: {statuses}")
        time.sleep(POLL_INTERVAL_S)


def cmd_watch(args, chan):
    """Watches one service, printing each status as it arrives, until --until is seen."""
    stub = health_pb2_grpc.HealthStub(chan)
    seen = []
    calls = stub.Watch(health_pb2.HealthCheckRequest(service=args.service), timeout=args.within)
    try:
        for reply in calls:
            status = STATUS_NAMES(reply.status)
            seen.append(status)
            emit({"status": status})
            if status == args.until:
                calls.cancel()
                emit({"seen": seen})
                return
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            emit({"seen": seen})
            fail(1, f"{args.service!r} was not {args.until} within {args.within} s; saw {seen}")
        fail(2, f"Watch failed: {e.code().name}: {e.details()}")
    emit({"seen": seen})
    fail(1, f"Watch ended before {args.until}; saw {seen}")


def reflection_round_trip(call, request_class, symbol):
    """Lists the services and fetches the file defining `symbol` over one
    reflection stream; returns (services, file descriptor)."""
    requests = [
        request_class(list_services=""),
        request_class(file_containing_symbol=symbol),
    ]
    replies = list(call(iter(requests), timeout=CALL_TIMEOUT_S))
    if len(replies) != 2:
        fail(2, f"expected 2 reflection replies, got {len(replies)}")
    services = sorted(s.name for s in replies[0].list_services_response.service)
    files = replies[1].file_descriptor_response.file_descriptor_proto
    if not files:
        fail(2, f"no file descriptor for {symbol}: {replies[1]}")
    fd = descriptor_pb2.FileDescriptorProto()
    fd.ParseFromString(files[0])
    return services, fd


def v1_classes(chan):
    """The grpc.reflection.v1 request and response classes, built from the
    descriptor the server itself describes (grpcio-reflection ships only
    v1alpha stubs): v1alpha reflection fetches it, protobuf makes classes."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(chan))
    service = pool.FindServiceByName("grpc.reflection.v1.ServerReflection")
    method = service.FindMethodByName("ServerReflectionInfo")
    request = message_factory.GetMessageClass(method.input_type)
    response = message_factory.GetMessageClass(method.output_type)
    return request, response


def cmd_reflect(args, chan):
    """Lists the services and fetches the file defining --symbol, through
    reflection v1alpha (grpcio-reflection's stubs) or v1."""
    if args.version == "v1alpha":
        call = v1alpha_grpc.ServerReflectionStub(chan).ServerReflectionInfo
        request_class = v1alpha_pb2.ServerReflectionRequest
    else:
        request_class, response_class = v1_classes(chan)
        call = chan.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
    services, fd = reflection_round_trip(call, request_class, args.symbol)
    short = args.symbol.rsplit(".", 1)[-1]
    emit(
        {
            "version": args.version,
            "services": services,
            "file": fd.name,
            "package": fd.package,
            "messages": sorted(m.name for m in fd.message_type),
            "services_in_file": {s.name: sorted(m.name for m in s.method) for s in fd.service},
            "symbol_defined": short in [m.name for m in fd.message_type]
            or short in [s.name for s in fd.service],
        }
    )


def cmd_call(args, chan):
    """Calls a unary method known only by name, with an empty request: its
    types come from the node's reflection (v1alpha), the call from grpcio's
    generic API."""
    service_name, method_name = args.method.rsplit(".", 1)
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(chan))
    method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
    if method.client_streaming or method.server_streaming:
        fail(2, f"{args.method} is not a unary method")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = chan.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    reply = call(request_class(), timeout=CALL_TIMEOUT_S)
    emit(
        {
            "method": args.method,
            "response_type": method.output_type.full_name,
            "response": json_format.MessageToDict(reply, preserving_proto_field_name=True),
        }
    )


def cmd_refused(args, chan):
    """Calls Health.Check for "" and reports how it failed; exits 1 if it
    succeeded."""
    stub = health_pb2_grpc.HealthStub(chan)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as e:
        emit({"code": e.code().name, "details": e.details() or ""})
        return
    emit({"code": "OK", "status": STATUS_NAMES(reply.status)})
    fail(1, "the call was answered")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", required=True, help="the node's gRPC address, HOST:PORT")
    p.add_argument("--ca", required=True, help="PEM CA bundle the node's certificate chains to")
    p.add_argument("--cert", help="PEM client certificate")
    p.add_argument("--key", help="PEM private key of --cert")
    p.add_argument("--no-cert", action="store_true", help="offer no client certificate")
    p.add_argument("--server-name", help="name to check the node's certificate for (default: the host of --addr)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="Health.Check each service")
    c.add_argument("services", nargs="+", help='service names ("" is the whole node)')
    c.add_argument("--until", help="poll until every service has this status (e.g. SERVING)")
    c.add_argument("--within", type=float, default=30.0, help="seconds to wait for --until")
    c.set_defaults(run=cmd_check)

    w = sub.add_parser("watch", help="Health.Watch one service until a status")
    w.add_argument("service", help='service name ("" is the whole node)')
    w.add_argument("--until", required=True, help="status to wait for (e.g. NOT_SERVING)")
    w.add_argument("--within", type=float, default=30.0, help="seconds to wait")
    w.set_defaults(run=cmd_watch)

    r = sub.add_parser("reflect", help="list services and fetch a symbol's file by reflection")
    r.add_argument("--version", choices=["v1", "v1alpha"], required=True)
    r.add_argument("--symbol", default="kauri.v1.Cluster", help="fully qualified symbol")
    r.set_defaults(run=cmd_reflect)

    k = sub.add_parser("call", help="call a unary method with an empty request, typed by reflection")
    k.add_argument("method", help="fully qualified method, e.g. kauri.v1.Cluster.Status")
    k.set_defaults(run=cmd_call)

    f = sub.add_parser("refused", help="expect Health.Check to be refused")
    f.set_defaults(run=cmd_refused)

    args = p.parse_args()
    if not args.no_cert and not (args.cert and args.key):
        p.error("--cert and --key are required unless --no-cert")
    chan = channel(args)
    try:
        args.run(args, chan)
    except grpc.RpcError as e:
        fail(2, f"{args.command}: {e.code().name}: {e.details()}")
    finally:
        chan.close()


if __name__ == "__main__":
    main()
