"""Build gload (bench/load/native/gload) with Debian's Go toolchain and packaged grpc-go, cached by source.

GOPATH mode (GO111MODULE=off) against /usr/share/gocode, where Debian's golang-*-dev packages put their
sources: nothing is downloaded. The binary lands in the cache directory under a name that carries the hash
of its sources, so an edited generator is rebuilt and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.errors import MissingTool
from bench.paths import REPO

__all__ = ["GLOAD_SOURCE", "GO_PACKAGES", "ensure_gload"]

GLOAD_SOURCE = Path(__file__).with_name("gload")
GO_PACKAGES = "golang-go golang-google-grpc-dev"
_DEBIAN_GOPATH = Path("/usr/share/gocode")
_CACHE = Path(os.environ.get("BENCH_NATIVE_CACHE", REPO / ".cache" / "native"))


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(GLOAD_SOURCE.glob("*.go")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_gload() -> Path:
    """The gload binary for the current sources, built on first use (a few seconds; cached afterwards)."""
    binary = _CACHE / f"gload-{_source_hash()}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go")
    if go is None or not (_DEBIAN_GOPATH / "src" / "google.golang.org" / "grpc").is_dir():
        raise MissingTool(
            f"building the gload load generator needs Debian's Go toolchain and grpc-go: "
            f"apt-get install -y {GO_PACKAGES}"
        )
    _CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gload-gopath-") as gopath:
        # GOPATH mode wants the package under <gopath>/src/<name>.
        (Path(gopath) / "src").mkdir()
        (Path(gopath) / "src" / "gload").symlink_to(GLOAD_SOURCE, target_is_directory=True)
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": f"{gopath}:{_DEBIAN_GOPATH}",
            "GOCACHE": str(_CACHE / "go-build"),
            "GOFLAGS": "",
            "CGO_ENABLED": "0",  # a static binary; no C toolchain needed
        }
        partial = binary.with_name(binary.name + ".partial")
        done = subprocess.run(
            [go, "build", "-o", str(partial), "."],
            cwd=Path(gopath) / "src" / "gload",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise MissingTool(
                f"building gload failed ({GO_PACKAGES} installed?):\n{done.stderr.strip()[-1500:]}"
            )
        partial.replace(binary)
    return binary
