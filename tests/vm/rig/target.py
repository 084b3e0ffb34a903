"""An iSCSI target: tgtd on 127.0.0.1, its control socket in a temp dir."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .host import RigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Chap:
    user: str
    secret: str


@dataclass
class Target:
    """One target with one LUN backed by a file.

    start() may come after the VM is already running (the late-target case);
    the port is chosen up front so the VM's forwarding knows it."""

    workdir: Path
    iqn: str
    backing: Path
    initiator: str | None = None  # ACL: only this initiator; None = ALL
    chap: Chap | None = None  # the initiator authenticates to the target
    chap_in: Chap | None = None  # mutual: the target authenticates back
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_base(self) -> Path:
        return self.workdir / "tgtd.sock"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "TGT_IPC_SOCKET": str(self.socket_base)}

    def admin(self, *args: str) -> None:
        proc = subprocess.run(
            ["tgtadm", "--lld", "iscsi", *args], env=self._env(), capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RigError(f"tgtadm {' '.join(args)}: {proc.stderr.strip()}")

    def start(self) -> Target:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "tgtd.log").open("ab")
        self.process = subprocess.Popen(
            ["tgtd", "-f", "--iscsi", f"portal=127.0.0.1:{self.port}"],
            env=self._env(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        control = Path(f"{self.socket_base}.0")
        deadline = time.monotonic() + 10
        while not control.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RigError(f"tgtd did not start; see {self.workdir / 'tgtd.log'}")
            time.sleep(0.05)
        # the control socket can exist a moment before tgtd accepts on it
        for _ in range(100):
            try:
                self.admin("--op", "new", "--mode", "target", "--tid", "1", "-T", self.iqn)
                break
            except RigError:
                time.sleep(0.05)
        else:
            raise RigError("tgtd does not answer on its control socket")
        self.admin(
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
            "-b",
            str(self.backing),
        )
        self.admin(
            "--op",
            "bind",
            "--mode",
            "target",
            "--tid",
            "1",
            "-Q" if self.initiator else "-I",
            self.initiator or "ALL",
        )
        # CHAP: the account the initiator logs in with, then (mutual) the one
        # the target answers with
        for account, direction in ((self.chap, ()), (self.chap_in, ("--outgoing",))):
            if account is None:
                continue
            self.admin(
                "--op",
                "new",
                "--mode",
                "account",
                "--user",
                account.user,
                "--password",
                account.secret,
            )
            self.admin(
                "--op",
                "bind",
                "--mode",
                "account",
                "--tid",
                "1",
                "--user",
                account.user,
                *direction,
            )
        return self

    def stop(self) -> None:
        """tgtd -f ignores SIGTERM: delete the target, then kill it by PID."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(RigError):
                self.admin("--op", "delete", "--mode", "target", "--tid", "1", "--force")
            self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
