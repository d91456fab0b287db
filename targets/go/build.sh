#!/usr/bin/env bash
# Build the Go implementation offline from Debian's packages (golang-go, golang-google-grpc-dev,
# golang-google-protobuf-dev, golang-golang-x-text-dev, golang-github-prometheus-client-golang-dev,
# protobuf-compiler): GOPATH mode over /usr/share/gocode, no module download. The protoc plugins are built from
# the same packaged sources, the gRPC code is generated from proto/library.proto, and the server lands in
# targets/go/bin/ (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$here/.build"
mkdir -p "$work/bin" "$work/src" "$here/bin"
export GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$work:/usr/share/gocode" GOCACHE="$work/cache"
go build -o "$work/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$work/bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
rm -rf "$work/src/library"
mapping="Mlibrary.proto=library/v1/librarypb"
PATH="$work/bin:$PATH" protoc -I "$repo/proto" \
    --go_out="$work/src" --go_opt="$mapping" --go-grpc_out="$work/src" --go-grpc_opt="$mapping" \
    "$repo/proto/library.proto"
cd "$here"
go build -o "$here/bin/library-grpc-go" main.go library.go metrics.go reflection_v1.go
echo "built $here/bin/library-grpc-go"
