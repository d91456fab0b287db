"""Guest kernel + initramfs, built offline from Debian's registry and cached by content hash."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from bench.vm.cache import cache_root
from bench.vm.cpio import CpioArchive
from bench.vm.errors import GuestBuildError
from bench.vm.init_script import INIT_SCRIPT
from bench.vm.kmod import load_order

__all__ = [
    "NINEP_INITRAMFS",
    "GuestArtifacts",
    "InitramfsSpec",
    "Kernel",
    "cached_guest",
    "ensure_guest",
    "ensure_kernel",
    "kernel_cmdline",
    "placeholder_guest",
]

# The generic flavour: Debian's cloud kernel has no 9p. Resolved through the meta package unless
# BENCH_GUEST_KERNEL names a concrete package (e.g. linux-image-6.1.0-56-amd64).
KERNEL_META_PACKAGE = "linux-image-amd64"
BUSYBOX = Path("/bin/busybox")  # from busybox-static; a dynamic busybox would not run in the initramfs

# Modules the init loads, dependencies resolved from the .ko files. virtio_pci: the PCI transport of
# every virtio device here; 9pnet_virtio + 9p: the host root and the results share.
GUEST_MODULES = ["virtio_pci", "9pnet_virtio", "9p"]

# busybox applets the init script calls; each becomes a symlink in /bin.
APPLETS = ["sh", "mount", "mkdir", "cat", "echo", "insmod", "ip", "chroot", "sync", "poweroff", "reboot"]

# Bump when the initramfs layout changes in a way the content hash would not see.
LAYOUT_VERSION = "1"

Mode = Literal["boot", "run", "migrate"]


@dataclass(frozen=True)
class InitramfsSpec:
    """What goes into an initramfs besides busybox: kernel modules, the init script, its cache directory."""

    modules: tuple[str, ...]
    init_script: str
    cache_dir: str  # under the cache root


# The guests of `bench vm boot/run` and `bench run`: the host's root over 9p.
NINEP_INITRAMFS = InitramfsSpec(tuple(GUEST_MODULES), INIT_SCRIPT, "guest")


@dataclass(frozen=True)
class Kernel:
    package: str
    version: str  # Debian package version, e.g. 6.1.192-2
    release: str  # uname -r, e.g. 6.1.0-56-amd64
    vmlinuz: Path
    modules_dir: Path


@dataclass(frozen=True)
class GuestArtifacts:
    kernel: Path
    initrd: Path
    kernel_package: str
    kernel_version: str
    kernel_release: str
    initrd_sha256: str
    modules: tuple[str, ...]

    def as_record(self) -> dict[str, str]:
        record = {key: str(value) for key, value in asdict(self).items()}
        record["modules"] = ",".join(self.modules)
        return record


_EXTRA_TOKEN = re.compile(r"^bench_[a-z_]+=[a-z0-9.-]+$")


def kernel_cmdline(mode: Mode, extra: tuple[str, ...] = ()) -> str:
    """Kernel command line; fixed tokens only, no profile value ever reaches it. `extra`: parameters of the
    guest's workload, each `bench_<name>=<lowercase word or number>` (anything else is refused)."""
    for token in extra:
        if not _EXTRA_TOKEN.match(token):
            raise ValueError(f"kernel command line token {token!r} is not bench_<name>=<word>")
    tokens = [
        # Kernel messages on the first serial port, which libvirt writes to the serial log file.
        "console=ttyS0,115200",
        # Print from the very start of the kernel (before the real console), so "kernel start" is timed.
        "earlyprintk=serial,ttyS0,115200",
        # A guest whose init dies resets at once; <on_reboot>destroy</on_reboot> then ends the domain
        # instead of the host waiting for the timeout.
        "panic=-1",
        f"bench_mode={mode}",
        *extra,
    ]
    return " ".join(tokens)


def _run(argv: list[str], *, cwd: Path | None = None) -> str:
    try:
        completed = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{argv[0]} not found; the guest build needs apt-get/dpkg (Debian)") from exc
    except subprocess.CalledProcessError as exc:
        raise GuestBuildError(
            f"{' '.join(argv)} failed with exit code {exc.returncode}: {exc.stderr.strip()[-800:]}"
        ) from exc
    return completed.stdout


def _resolve_kernel_package() -> str:
    explicit = os.environ.get("BENCH_GUEST_KERNEL")
    if explicit:
        return explicit
    out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    match = re.search(r"Depends:\s+(linux-image-\S+-amd64)\b", out)
    if not match:
        raise GuestBuildError(
            f"could not resolve {KERNEL_META_PACKAGE} to a kernel package (apt-cache depends printed "
            f"{out.strip()[:200]!r}); run `apt-get update` or set BENCH_GUEST_KERNEL=linux-image-<ver>-amd64"
        )
    return match.group(1)


def _kernels_dir(cache: Path) -> Path:
    return cache / "kernels"


def _load_kernel(directory: Path) -> Kernel | None:
    try:
        meta = json.loads((directory / "kernel.json").read_text())
    except (OSError, ValueError):
        return None
    kernel = Kernel(
        package=meta["package"],
        version=meta["version"],
        release=meta["release"],
        vmlinuz=directory / "boot" / f"vmlinuz-{meta['release']}",
        modules_dir=directory / "lib" / "modules" / meta["release"],
    )
    return kernel if kernel.vmlinuz.is_file() and kernel.modules_dir.is_dir() else None


def ensure_kernel(
    *, cache: Path | None = None, log: Callable[[str], None] | None = None, package: str | None = None
) -> Kernel:
    """Download and unpack the generic Debian kernel once; later calls reuse the unpacked tree.

    With no explicit package (argument or BENCH_GUEST_KERNEL), an already unpacked kernel is reused
    without asking apt, so building works offline once the cache is warm.
    """
    cache = cache or cache_root()
    kernels = _kernels_dir(cache)
    package = package or os.environ.get("BENCH_GUEST_KERNEL")
    if package is None and kernels.is_dir():
        for directory in sorted(kernels.iterdir(), reverse=True):
            found = _load_kernel(directory)
            if found is not None:
                return found
    package = package or _resolve_kernel_package()
    target = kernels / package
    found = _load_kernel(target)
    if found is not None:
        return found
    if log:
        log(f"downloading {package} from Debian's registry (apt-get download) …")
    kernels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kernels, prefix=".download-") as tmp_name:
        tmp = Path(tmp_name)
        # apt drops privileges to _apt for downloads; let it write here so it does not warn.
        os.chmod(tmp, 0o777)
        _run(["apt-get", "download", package], cwd=tmp)
        debs = sorted(tmp.glob("*.deb"))
        if len(debs) != 1:
            raise GuestBuildError(f"apt-get download {package} left {len(debs)} .deb files in {tmp}")
        version = _run(["dpkg-deb", "--field", str(debs[0]), "Version"]).strip()
        if log:
            log(f"unpacking {debs[0].name} (dpkg -x) …")
        tree = tmp / "tree"
        _run(["dpkg", "-x", str(debs[0]), str(tree)])
        vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise GuestBuildError(f"{debs[0].name} contains no boot/vmlinuz-*; is it a kernel image package?")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        (tree / "kernel.json").write_text(
            json.dumps({"package": package, "version": version, "release": release}, indent=2) + "\n"
        )
        if target.exists():
            shutil.rmtree(target)
        tree.rename(target)
    found = _load_kernel(target)
    if found is None:
        raise GuestBuildError(f"unpacked kernel at {target} is incomplete (no vmlinuz or modules dir)")
    return found


def _check_static(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GuestBuildError(f"{path} is missing: install the Debian package busybox-static") from exc
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise GuestBuildError(f"{path} is not an ELF64 executable")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        (p_type,) = struct.unpack_from("<I", data, phoff + index * phentsize)
        if p_type == 3:  # PT_INTERP: needs a dynamic loader the initramfs does not have
            raise GuestBuildError(
                f"{path} is dynamically linked; install busybox-static (it replaces the busybox package)"
            )
    return data


def _builtin_modules(kernel: Kernel) -> set[str]:
    path = kernel.modules_dir / "modules.builtin"
    try:
        lines = path.read_text().split()
    except OSError:
        return set()
    return {Path(line).name.removesuffix(".ko").replace("-", "_") for line in lines}


def _initramfs(kernel: Kernel, spec: InitramfsSpec) -> tuple[bytes, tuple[str, ...]]:
    archive = CpioArchive()
    for directory in ["bin", "dev", "proc", "sys", "newroot", "share", "lib", "lib/modules"]:
        archive.directory(directory)
    archive.char_device("dev/console", 5, 1)
    archive.char_device("dev/null", 1, 3, perm=0o666)
    archive.file("bin/busybox", _check_static(BUSYBOX), perm=0o755)
    for applet in APPLETS:
        archive.symlink(f"bin/{applet}", "busybox")
    modules = load_order(kernel.modules_dir, list(spec.modules), builtin=_builtin_modules(kernel))
    for module in modules:
        archive.file(f"lib/modules/{module.name}.ko", module.data)
    archive.file("lib/modules/load-order", "".join(f"{m.name}.ko\n" for m in modules).encode())
    archive.file("init", spec.init_script.encode(), perm=0o755)
    return archive.to_bytes(), tuple(module.name for module in modules)


def _guest_dir(cache: Path) -> Path:
    return cache / NINEP_INITRAMFS.cache_dir


def ensure_guest(
    *,
    cache: Path | None = None,
    log: Callable[[str], None] | None = None,
    spec: InitramfsSpec = NINEP_INITRAMFS,
) -> GuestArtifacts:
    """Return kernel + initramfs, building the initramfs only when its content changed."""
    cache = cache or cache_root()
    kernel = ensure_kernel(cache=cache, log=log)
    image, modules = _initramfs(kernel, spec)
    digest = hashlib.sha256(image + LAYOUT_VERSION.encode()).hexdigest()
    directory = cache / spec.cache_dir / digest[:16]
    initrd = directory / "initrd.cpio"
    if not initrd.is_file():
        if log:
            log(f"writing initramfs {initrd} ({len(image) / 1e6:.1f} MB, modules: {', '.join(modules)})")
        directory.mkdir(parents=True, exist_ok=True)
        tmp = initrd.with_suffix(".tmp")
        tmp.write_bytes(image)
        tmp.rename(initrd)
    artifacts = GuestArtifacts(
        kernel=kernel.vmlinuz,
        initrd=initrd,
        kernel_package=kernel.package,
        kernel_version=kernel.version,
        kernel_release=kernel.release,
        initrd_sha256=digest,
        modules=modules,
    )
    (directory / "guest.json").write_text(json.dumps(artifacts.as_record(), indent=2) + "\n")
    return artifacts


def cached_guest(*, cache: Path | None = None) -> GuestArtifacts | None:
    """The most recently built guest, without downloading or building anything."""
    guests = _guest_dir(cache or cache_root())
    if not guests.is_dir():
        return None
    candidates = sorted(guests.glob("*/guest.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for meta_path in candidates:
        try:
            meta = json.loads(meta_path.read_text())
            artifacts = GuestArtifacts(
                kernel=Path(meta["kernel"]),
                initrd=Path(meta["initrd"]),
                kernel_package=meta["kernel_package"],
                kernel_version=meta["kernel_version"],
                kernel_release=meta["kernel_release"],
                initrd_sha256=meta["initrd_sha256"],
                modules=tuple(filter(None, meta["modules"].split(","))),
            )
        except (OSError, ValueError, KeyError):
            continue
        if artifacts.kernel.is_file() and artifacts.initrd.is_file():
            return artifacts
    return None


def placeholder_guest() -> GuestArtifacts:
    """Stand-in paths for printing domain XML before anything is built (and for golden tests)."""
    return GuestArtifacts(
        kernel=Path("/GUEST/vmlinuz"),
        initrd=Path("/GUEST/initrd.cpio"),
        kernel_package="linux-image-VERSION-amd64",
        kernel_version="VERSION",
        kernel_release="VERSION-amd64",
        initrd_sha256="0" * 64,
        modules=(),
    )
