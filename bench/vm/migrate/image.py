"""The guest image of `bench vm migrate`: a read-only squashfs of the host's own files that the target needs.

QEMU refuses to migrate a guest with a 9p export mounted, so a migratable guest cannot see the host's root
the way the other guests do. Instead its software sits on a read-only block device that both ends of the
migration open: on one host the image file is shared storage for free. The image holds, at their host
paths, the Python standard library, the interpreter and its venv, every top-level package the in-guest
workload imports (found by importing it on the host: `_load.py --probe`), the project's own packages and
every shared library those link (`ldd`). It is cached by content: the key hashes the path, size and mtime of
every file it holds, so any change on the host (a pip install, an edit) builds a new image.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.vm.cache import cache_root, project_root
from bench.vm.errors import GuestBuildError

__all__ = ["CONTROL_DIR", "GuestImage", "ensure_image", "mksquashfs_argv", "planned_roots"]

# Bump when the image's layout changes in a way the file list would not show.
IMAGE_LAYOUT = "1"
MKSQUASHFS = "mksquashfs"
CONTROL_DIR = ".bench"  # /.bench/python in the image: the interpreter the guest init starts
# Standard library parts no target uses, the static library to embed Python (config-*), and the base
# interpreter's own site-packages (the venv's count).
STDLIB_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "config-*",
               "site-packages")  # fmt: skip
# Files never needed: bytecode for `python -O` only, and Tk (which would pull in X11 libraries).
FILE_SKIP = ("*.opt-1.pyc", "*.opt-2.pyc", "_tkinter.*.so")
# The standard library's own test suites, nested in its packages (ctypes/test, unittest/test, …).
STDLIB_NESTED_SKIP = ("test", "tests", "idle_test")
# In the project's own packages: what no Python workload reads (the other implementations' packages, tests).
PROJECT_NESTED_SKIP = ("node_modules", "test", "tests", "bin")
# Project data the workload reads at run time (the SOAP client reads the WSDL).
PROJECT_DATA = ("wsdl",)
# Mount points the guest init needs in the read-only root; the writable ones get a tmpfs unless the image
# holds files there (a checkout under /tmp, say), which a tmpfs would hide.
MOUNT_POINTS = ("proc", "sys", "dev", "tmp", "run", "var/tmp")
WRITABLE = ("tmp", "run", "var/tmp")
# Loaded with dlopen, so ldd does not list it: glibc needs it to unwind a thread that exits or is cancelled.
DLOPENED = ("libgcc_s.so.1",)
KEEP_IMAGES = 4  # older images in the cache are removed (each is ~100-200 MB)


@dataclass(frozen=True)
class GuestImage:
    path: Path
    sha256: str  # of the image file
    key: str  # of its contents (paths, sizes, mtimes)
    size_bytes: int
    files: int
    protocol: str
    python: str  # the interpreter the guest starts (same path as on the host)
    libraries: tuple[str, ...]

    def as_record(self) -> dict[str, object]:
        record = asdict(self)
        record["path"] = str(self.path)
        record["libraries"] = list(self.libraries)
        return record


def mksquashfs_argv(staging: Path, image: Path) -> list[str]:
    return [
        MKSQUASHFS, str(staging), str(image),
        "-noappend",  # a new image, never added to an old one
        "-all-root",  # every file owned by root in the guest, whoever owns it on the host
        "-no-xattrs",  # no host labels or capabilities
        # Uncompressed: the guest's CPU may be emulated (TCG), where decompressing costs more than reading.
        "-noI", "-noD", "-noF", "-noX",
        # Not -all-time: Python checks each .pyc against its source's mtime, and recompiles (slowly, in the
        # guest, on every start) when they differ.
        "-mkfs-time", "0",
        "-no-progress",
        "-quiet",
    ]  # fmt: skip


def _probe_modules(protocol: str) -> list[str]:
    argv = [sys.executable, "-m", "bench.vm.migrate._load", "--probe", protocol]
    done = subprocess.run(argv, cwd=project_root(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GuestBuildError(
            f"importing the guest workload for {protocol} on the host failed ({' '.join(argv)}): "
            f"{done.stderr.strip()[-800:]}"
        )
    modules: list[str] = json.loads(done.stdout)["modules"]
    return modules


def _skipped(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def planned_roots(modules: list[str]) -> list[str]:
    """The host paths the image holds (directories whole), from the module files the workload imports."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    project = project_root()
    roots = {str(entry) for entry in stdlib.iterdir() if not _skipped(entry.name, STDLIB_SKIP)}
    roots.add(sys.executable)
    roots.add(str(Path(sys.prefix) / "pyvenv.cfg"))
    roots.update(str(path) for path in site.glob("*.pth"))  # the editable install's path, distutils shim
    roots.update(str(project / name) for name in PROJECT_DATA if (project / name).exists())
    for module in modules:
        path = Path(module)
        for base in (stdlib, site, project):
            if path.is_relative_to(base):
                top = path.relative_to(base).parts[0]
                if base != stdlib or not _skipped(top, STDLIB_SKIP):
                    roots.add(str(base / top))
                break
        else:
            roots.add(str(path))
    return sorted(roots)


class _Tree:
    """The image's entries by guest path: directories, files (with their host source) and symlinks.

    Paths are followed component by component as the guest will follow them: a symlinked directory on the
    host (/lib -> usr/lib) becomes the same symlink in the image, and its target is added as well.
    """

    def __init__(self, stdlib: str | None = None, project: str | None = None) -> None:
        self.entries: dict[str, tuple[str, ...]] = {}
        self._walked: set[str] = set()
        self._stdlib = stdlib
        self._project = project

    def add(self, path: str, *, depth: int = 0) -> None:
        parts = Path(os.path.normpath(path)).parts
        current = "/"
        for index, part in enumerate(parts[1:], start=1):
            current = os.path.join(current, part)
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                raise GuestBuildError(f"{current} is missing on the host; the guest image needs it") from None
            if stat.S_ISLNK(info.st_mode):
                if depth > 40:  # what the kernel allows too (ELOOP)
                    raise GuestBuildError(f"too many levels of symbolic links at {current}")
                target = os.readlink(current)
                self.entries[current] = ("link", target)
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
                self.add(os.path.join(resolved, *parts[index + 1 :]), depth=depth + 1)
                return
            if stat.S_ISDIR(info.st_mode):
                self.entries.setdefault(current, ("dir",))
                if index == len(parts) - 1:
                    self._walk(current)
            elif stat.S_ISREG(info.st_mode):
                self.entries[current] = ("file", str(info.st_size), str(info.st_mtime_ns))

    def _walk(self, directory: str) -> None:
        if directory in self._walked:
            return
        self._walked.add(directory)
        for root, dirs, files in os.walk(directory):
            self.entries.setdefault(root, ("dir",))
            if self._stdlib and root.startswith(self._stdlib + "/"):
                dirs[:] = [name for name in dirs if name not in STDLIB_NESTED_SKIP]
            if self._project and root.startswith(self._project + "/") and not root.startswith(sys.prefix):
                dirs[:] = [name for name in dirs if name not in PROJECT_NESTED_SKIP]
            for name in [*files, *dirs]:
                if _skipped(name, FILE_SKIP):
                    continue
                path = os.path.join(root, name)
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    self.add(path)
                elif stat.S_ISREG(info.st_mode):
                    self.entries[path] = ("file", str(info.st_size), str(info.st_mtime_ns))

    def elf_files(self) -> list[str]:
        """Shared objects and executables among the files (what the dynamic loader will open)."""
        elves = []
        for path, entry in self.entries.items():
            if entry[0] != "file" or not (".so" in os.path.basename(path) or os.access(path, os.X_OK)):
                continue
            try:
                with open(path, "rb") as handle:
                    if handle.read(4) == b"\x7fELF":
                        elves.append(path)
            except OSError:
                continue
        return sorted(elves)

    def key(self, protocol: str) -> str:
        digest = hashlib.sha256(f"{IMAGE_LAYOUT}\0{protocol}\0{sys.executable}\n".encode())
        for path in sorted(self.entries):
            digest.update(json.dumps([path, *self.entries[path]]).encode() + b"\n")
        return digest.hexdigest()


def _shared_libraries(files: list[str]) -> list[str]:
    """Every library the dynamic loader would open for `files` (ldd, which runs the host's own loader)."""
    if not files:
        return []
    done = subprocess.run(["ldd", *files], capture_output=True, text=True, check=False)
    libraries: set[str] = set()
    missing: list[str] = []
    for line in done.stdout.splitlines():
        if not line.startswith("\t"):
            continue  # "<file>:" headers, "not a dynamic executable"
        text = line.strip()
        if "=> not found" in text:
            missing.append(text.split()[0])
        elif "=>" in text:
            target = text.split("=>", 1)[1].strip().split(" (")[0]
            if target.startswith("/"):
                libraries.add(target)
        elif text.startswith("/"):
            libraries.add(text.split(" (")[0])  # the loader itself
    if missing:
        raise GuestBuildError(f"shared libraries not found on the host: {', '.join(sorted(set(missing)))}")
    for name in DLOPENED:
        for lib in sorted(libraries):
            candidate = Path(lib).parent / name
            if candidate.exists():
                libraries.add(str(candidate))
                break
    return sorted(libraries)


def _stage(tree: _Tree, staging: Path) -> None:
    for path in sorted(tree.entries):
        entry = tree.entries[path]
        target = staging / path.lstrip("/")
        if entry[0] == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry[0] == "link":
            target.symlink_to(entry[1])
            continue
        try:
            os.link(path, target)  # same filesystem: no copy
        except OSError:
            shutil.copy2(path, target)
    for name in MOUNT_POINTS:
        (staging / name).mkdir(parents=True, exist_ok=True)
    control = staging / CONTROL_DIR
    control.mkdir(exist_ok=True)
    (control / "python").write_text(f"{sys.executable}\n")
    free = [name for name in WRITABLE if not any(path.startswith(f"/{name}/") for path in tree.entries)]
    (control / "tmpfs").write_text("".join(f"{name}\n" for name in free))


def _images_dir(cache: Path) -> Path:
    return cache / "migrate-image"


def _load(directory: Path) -> GuestImage | None:
    try:
        meta = json.loads((directory / "image.json").read_text())
        image = GuestImage(**{**meta, "path": Path(meta["path"]), "libraries": tuple(meta["libraries"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return image if image.path.is_file() and image.path.stat().st_size == image.size_bytes else None


def _prune(images: Path, keep: Path) -> None:
    entries = [p for p in images.iterdir() if p.is_dir() and not p.name.startswith(".") and p != keep]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_IMAGES - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def ensure_image(
    protocol: str, *, cache: Path | None = None, log: Callable[[str], None] | None = None
) -> GuestImage:
    """The image for `protocol`'s target and load, built only when the host files it holds changed."""
    cache = cache or cache_root()
    if shutil.which(MKSQUASHFS) is None:
        raise GuestBuildError(f"{MKSQUASHFS} not found: install the Debian package squashfs-tools")
    tree = _Tree(stdlib=sysconfig.get_paths()["stdlib"], project=str(project_root()))
    for root in planned_roots(_probe_modules(protocol)):
        tree.add(root)
    libraries = _shared_libraries(tree.elf_files())
    for library in libraries:
        tree.add(library)
    key = tree.key(protocol)
    images = _images_dir(cache)
    directory = images / key[:16]
    found = _load(directory)
    if found is not None:
        os.utime(directory)  # most recently used: kept by _prune
        return found
    images.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=images))
    try:
        staging = work / "root"
        if log:
            log(f"building the guest image ({len(tree.entries)} entries) with {MKSQUASHFS} …")
        _stage(tree, staging)
        path = work / "image.squashfs"
        argv = mksquashfs_argv(staging, path)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise GuestBuildError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
        shutil.rmtree(staging)
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        image = GuestImage(
            path=directory / path.name,
            sha256=sha.hexdigest(),
            key=key,
            size_bytes=path.stat().st_size,
            files=sum(1 for entry in tree.entries.values() if entry[0] == "file"),
            protocol=protocol,
            python=sys.executable,
            libraries=tuple(libraries),
        )
        (work / "image.json").write_text(json.dumps(image.as_record(), indent=2) + "\n")
        try:
            work.rename(directory)
        except OSError:
            # Another bench process built the same image meanwhile: use that one.
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _prune(images, directory)
    loaded = _load(directory)
    if loaded is None:
        raise GuestBuildError(f"the guest image in {directory} is incomplete; remove the directory and retry")
    return loaded
