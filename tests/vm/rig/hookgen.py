"""Our generator, run as a user runs it (the CLI, in a subprocess) on this
checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

from . import names
from .host import RigError

REPO = Path(__file__).resolve().parents[3]
PACKAGED = REPO / "initcpio"  # the generic hook the package ships
# what a user of static-portal mode passes for this rig's target
STATIC_ARGS = ("--portal", names.PORTAL, "--target", names.TARGET_IQN,
               "--initiator", names.INITIATOR_IQN)  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "generator")}


@cache
def _extra_args() -> tuple[str, ...]:
    # Once the CLI also edits mkinitcpio.conf, --no-edit keeps it to the hooks.
    help_text = subprocess.run(
        [sys.executable, "-m", "iscsi_hookgen", "--help"],
        env=_env(),
        capture_output=True,
        text=True,
    ).stdout
    return ("--no-edit",) if "--no-edit" in help_text else ()


def generate(output: Path, *args: str) -> Path:
    """iscsi-hookgen --output OUTPUT ARGS...; returns OUTPUT (a hook dir)."""
    proc = subprocess.run(
        [sys.executable, "-m", "iscsi_hookgen", "--output", str(output), *_extra_args(), *args],
        env=_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RigError(f"iscsi-hookgen {' '.join(args)} failed: {proc.stderr.strip()}")
    return output
