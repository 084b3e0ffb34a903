"""Boot the kernel + initramfs under QEMU with only loopback reachable."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .host import Kernel, accelerator

RELAY = Path(__file__).with_name("relay.py")
PORTAL = "10.0.2.100"
GUEST_MAC = "52:54:00:12:34:56"


@dataclass(frozen=True)
class BootResult:
    console: str
    returncode: int | None  # None: killed at the timeout
    seconds: float  # host wall clock from QEMU start to exit

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def qemu_command(
    kernel: Kernel,
    initrd: Path,
    append: str,
    console: Path,
    target_port: int | None,
    acpi_tables: tuple[Path, ...] = (),
) -> list[str]:
    accel = accelerator()
    netdev = "user,id=net0,restrict=on"
    if target_port is not None:
        # One relay per guest connection to PORTAL:3260, to tgtd on loopback.
        # libslirp splits the command like a shell but runs no shell, so the
        # stderr redirection needs an explicit sh -c.
        relay = shlex.join([sys.executable, str(RELAY), str(target_port)])
        command = shlex.join(["/bin/sh", "-c", f"exec {relay} 2>/dev/null"])
        netdev += f",guestfwd=tcp:{PORTAL}:3260-cmd:{command.replace(',', ',,')}"
    cmd = [
        "qemu-system-x86_64",
        "-machine",
        f"pc,accel={accel}",
        "-cpu",
        "host" if accel == "kvm" else "max",
        "-m",
        "512",
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{console}",
        "-kernel",
        str(kernel.vmlinuz),
        "-initrd",
        str(initrd),
        "-append",
        append,
        "-netdev",
        netdev,
        # No option ROM: the kernel is loaded directly, iPXE would only cost time.
        # Slot 3 is where the iBFT table (rig/ibft.py) says the NIC is.
        "-device",
        f"virtio-net-pci,netdev=net0,mac={GUEST_MAC},addr=0x3,romfile=",
    ]
    for table in acpi_tables:
        cmd += ["-acpitable", f"file={table}"]
    return cmd


def boot(
    kernel: Kernel,
    initrd: Path,
    append: str,
    workdir: Path,
    *,
    target_port: int | None,
    timeout: float,
    acpi_tables: tuple[Path, ...] = (),
    name: str = "boot",
) -> BootResult:
    """Run one boot to power-off, or kill it at TIMEOUT seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    console = workdir / f"{name}.console"
    console.unlink(missing_ok=True)
    base = "console=ttyS0 panic=-1 vmtest.rescue=poweroff"
    cmd = qemu_command(kernel, initrd, f"{base} {append}", console, target_port, acpi_tables)
    (workdir / f"{name}.cmd").write_text(shlex.join(cmd) + "\n")
    start = time.monotonic()
    with (workdir / f"{name}.qemu.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
    seconds = time.monotonic() - start
    text = console.read_text(errors="replace") if console.exists() else ""
    return BootResult(text, rc, seconds)
