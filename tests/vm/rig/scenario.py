"""One boot as the tests see it: build an image, serve a fresh copy of the root
disk from tgtd, boot, and collect what the console and the disk say."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import names
from .host import Kernel, RigError
from .qemu import BootResult, boot
from .rootfs import read_written
from .target import Chap, Target

ASSEMBLER = Path(__file__).with_name("assemble")
STAND_INS = Path(__file__).with_name("initcpio")


@dataclass(frozen=True)
class Outcome:
    result: BootResult
    token: str
    written: str  # what the guest wrote to the root disk ('' if nothing)
    workdir: Path

    @property
    def console(self) -> str:
        return self.result.console

    @property
    def marker(self) -> dict[str, str] | None:
        """The root's VMTEST-MARKER facts, if this boot's marker is there."""
        for line in self.console.splitlines():
            if line.startswith("VMTEST-MARKER "):
                facts = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
                if facts.get("token") == self.token:
                    return facts
        return None

    @property
    def rescue(self) -> str | None:
        m = re.search(r"^VMTEST-RESCUE: (.*)$", self.console, re.M)
        return m.group(1) if m else None

    def times(self) -> list[tuple[float, str]]:
        """(guest uptime, event) from the /init's VMTEST-TIME lines."""
        out = []
        for m in re.finditer(r"^VMTEST-TIME ([0-9.]+) (.*)$", self.console, re.M):
            out.append((float(m.group(1)), m.group(2).strip()))
        return out

    def time_of(self, event: str) -> float | None:
        for t, what in self.times():
            if what.startswith(event):
                return t
        return None

    def summary(self) -> str:
        """The console's tail without kernel log lines, for assertion messages."""
        lines = [ln for ln in self.console.splitlines() if not ln.startswith("[")]
        return f"workdir {self.workdir}\n" + "\n".join(lines[-40:])


def assert_booted(out: Outcome) -> dict[str, str]:
    """The boot reached the root on the iSCSI disk, wrote to it and powered
    off; returns the marker's facts."""
    facts = out.marker
    assert facts is not None, out.summary()
    assert facts["root"] == "/dev/sda", out.summary()
    assert facts["target"] == names.TARGET_IQN, out.summary()
    assert facts["sessions"] == "1", out.summary()
    assert out.written == out.token, "the guest's write did not reach the LUN"
    assert out.result.returncode == 0, out.summary()
    return facts


@dataclass
class Rig:
    kernel: Kernel
    workdir: Path
    root_template: Path
    _images: dict[tuple[str, ...], Path] = field(default_factory=dict)

    def image(self, name: str, hooks: list[str], hookdirs: list[Path]) -> Path:
        """Assemble an initramfs with HOOKS, hook files searched in HOOKDIRS
        first, then the rig's stand-ins (base, udev, net, block, filesystems)."""
        key = (*hooks, "|", *map(str, hookdirs))
        if key in self._images:
            return self._images[key]
        out = self.workdir / "images" / f"{name}.img"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(ASSEMBLER),
            "--kernel-version",
            self.kernel.version,
            "--modules-root",
            str(self.kernel.modules),
            "--output",
            str(out),
        ]
        for d in [*hookdirs, STAND_INS]:
            cmd += ["--hookdir", str(d)]
        proc = subprocess.run([*cmd, *hooks], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RigError(f"assembling {name} failed:\n{proc.stderr}")
        self._images[key] = out
        return out

    def boot(
        self,
        name: str,
        initrd: Path,
        append: str,
        *,
        timeout: float,
        target: bool = True,
        target_delay: float | None = None,
        chap: Chap | None = None,
        chap_in: Chap | None = None,
        acl: str | None = names.INITIATOR_IQN,
        acpi_tables: tuple[Path, ...] = (),
    ) -> Outcome:
        """Boot INITRD with root=/dev/sda on a fresh copy of the root disk.

        target=False: no forwarding for the portal at all (an unreachable
        target). target_delay: start tgtd that many seconds after QEMU."""
        work = self.workdir / name
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        lun = work / "lun.img"
        shutil.copyfile(self.root_template, lun)
        token = secrets.token_hex(8)
        tgt = Target(work / "tgt", names.TARGET_IQN, lun, initiator=acl, chap=chap, chap_in=chap_in)
        timer = None
        try:
            if target and target_delay is None:
                tgt.start()
            elif target:
                timer = threading.Timer(target_delay, tgt.start)
                timer.start()
            result = boot(
                self.kernel,
                initrd,
                f"{append} vmtest.token={token}",
                work,
                target_port=tgt.port if target else None,
                timeout=timeout,
                acpi_tables=acpi_tables,
                name="boot",
            )
        finally:
            if timer is not None:
                timer.cancel()
                timer.join()
            tgt.stop()
        return Outcome(result, token, read_written(lun), work)
