"""What the rig needs from the host, found or refused loudly (never skipped)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SETUP_HINT = "run `sudo bash .ci/setup` (it installs everything the VM tests need)"

TOOLS = (
    "qemu-system-x86_64",
    "tgtd",
    "tgtadm",
    "iscsistart",
    "busybox",
    "kmod",
    "depmod",
    "modinfo",
    "modprobe",
    "ldd",
    "cpio",
    "zstd",
    "mkfs.ext4",
    "debugfs",
    "udevadm",
)
FILES = (
    "/usr/lib/klibc/bin/ipconfig",
    "/lib/systemd/systemd-udevd",
    "/lib/systemd/systemd",  # PID 1 of the systemd-based image
)


class RigError(RuntimeError):
    """Something the VM rig needs is missing or broken."""


@dataclass(frozen=True)
class Kernel:
    version: str
    vmlinuz: Path
    modules: Path  # .../lib/modules/VERSION


def require_tools() -> None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [tool for tool in TOOLS if shutil.which(tool, path=path) is None]
    missing += [f for f in FILES if not Path(f).exists()]
    if missing:
        raise RigError(f"VM rig: missing {', '.join(missing)}; {SETUP_HINT}")


def find_kernel() -> Kernel:
    """The newest /boot/vmlinuz-* that has its modules installed."""
    found = []
    for vmlinuz in Path("/boot").glob("vmlinuz-*"):
        version = vmlinuz.name.removeprefix("vmlinuz-")
        modules = Path("/lib/modules") / version
        if (modules / "modules.dep").is_file() and os.access(vmlinuz, os.R_OK):
            found.append(Kernel(version, vmlinuz, modules))
    if not found:
        raise RigError(
            "VM rig: no /boot/vmlinuz-* with modules in /lib/modules (linux-image-amd64); "
            + SETUP_HINT
        )
    found.sort(
        key=lambda k: [int(p) if p.isdigit() else 0 for p in k.version.replace("-", ".").split(".")]
    )
    kernel = found[-1]
    for module in ("iscsi_tcp", "iscsi_ibft", "virtio_net", "sd_mod"):
        if not list(kernel.modules.rglob(f"{module}.ko*")):
            raise RigError(f"VM rig: kernel {kernel.version} has no {module} module")
    return kernel


def accelerator() -> str:
    """KVM only where it boots a stock kernel.

    Some hosts expose /dev/kvm from a software nested-virtualisation module
    (kvm_pvm) that cannot run an unmodified guest kernel; only the hardware
    modules kvm_intel/kvm_amd are trusted. VMTEST_ACCEL=tcg|kvm overrides."""
    forced = os.environ.get("VMTEST_ACCEL")
    if forced:
        return forced
    hardware = any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd"))
    if hardware and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "kvm"
    return "tcg"
