"""Every rendered variant passes shellcheck, as mkinitcpio's own hooks do."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from samples import INITIATOR, TARGET

STATIC = ("--portal", "192.0.2.10", "--target", TARGET, "--initiator", INITIATOR)
VARIANTS = {
    "static": STATIC,
    "static-ipv6-port": (
        "--portal",
        "[2001:db8::1]:3261",
        "--target",
        TARGET,
        "--initiator",
        INITIATOR,
        "--tpgt",
        "7",
    ),
    "static-params": (*STATIC, "--resilient", "-P", "node.session.cmds_max=128"),
    "static-chap": (*STATIC, "--chap-user", "arch", "--chap-secret-file", "{secret}"),
    "static-mutual-chap": (
        *STATIC,
        "--chap-user",
        "arch",
        "--chap-secret-file",
        "{secret}",
        "--chap-in-user",
        "tgt",
        "--chap-in-secret-file",
        "{in_secret}",
    ),
    "static-nic": (*STATIC, "--nic-module", "e1000e", "--retries", "3"),
    "ibft": ("--ibft",),
    "ibft-nic-params": (
        "--ibft",
        "--nic-module",
        "virtio_net",
        "-P",
        "node.session.timeo.replacement_timeout=86400",
    ),
    "generic": ("--generic",),
}
# What mkinitcpio's .shellcheckrc adds: ash scripts are checked as dash.
RUNTIME = [
    "shellcheck",
    "--shell=dash",
    "--exclude=SC2187",
    "--enable=avoid-nullary-conditions,deprecate-which,quote-safe-variables",
]
BUILD = [
    "shellcheck",
    "--shell=bash",
    "--enable=avoid-nullary-conditions,deprecate-which,quote-safe-variables",
]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_hooks_pass_shellcheck(
    generate: Callable[..., Path], secret_files: tuple[Path, Path], variant: str
) -> None:
    args = [a.format(secret=secret_files[0], in_secret=secret_files[1]) for a in VARIANTS[variant]]
    hooks = generate(*args)
    for command, path in ((RUNTIME, hooks / "hooks/iscsi"), (BUILD, hooks / "install/iscsi")):
        done = subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    if (hooks / "iscsi-chap").exists():
        done = subprocess.run(
            [*RUNTIME, "--exclude=SC2034", str(hooks / "iscsi-chap")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout
