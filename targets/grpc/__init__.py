"""gRPC adapter: grpc.aio servicer over the core, plus protobuf <-> domain conversion shared with clients."""
