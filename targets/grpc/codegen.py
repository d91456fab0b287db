"""Generate the committed gRPC/protobuf code from proto/library.proto (`bench codegen` runs it)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
GENERATED = Path(__file__).resolve().parent / "_generated"
OUTPUTS = ("library_pb2.py", "library_pb2.pyi", "library_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (grpcio-tools) into `out_dir`; package-relative imports, so no sys.path hack is needed."""
    import grpc_tools
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(PROTO_DIR / "library.proto"),
        ]
        if protoc.main(argv) != 0:
            raise RuntimeError(f"protoc failed on {PROTO_DIR / 'library.proto'}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in OUTPUTS:
            text = (Path(tmp) / name).read_text()
            text = re.sub(r"^import library_pb2 as", "from . import library_pb2 as", text, flags=re.M)
            target = out_dir / name
            target.write_text(text)
            written.append(target)
    return written
