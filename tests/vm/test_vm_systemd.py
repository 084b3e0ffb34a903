"""Issue 6's boots: a systemd-based initramfs (Debian's systemd as PID 1, built
by the rig's stand-in for mkinitcpio's systemd hook, tests/vm/rig/systemd),
where no run_hook runs and our login unit does the iSCSI login."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rig.scenario import ASSEMBLER, STAND_INS, Outcome, Rig, assert_booted

SYSTEMD_STAND_INS = STAND_INS.parent / "systemd"
# Arch's systemd-based HOOKS reduced to what this VM needs, without 'base':
# our hook must then bring busybox for its login routine itself.
SYSTEMD_HOOKS = ["systemd", "iscsi", "block", "filesystems"]
ROOT = "root=/dev/sda"
BOOT_TIMEOUT = 180
UNIT = "usr/lib/systemd/system/iscsi-hookgen-login.service"


def systemd_image(rig: Rig, name: str, hooks: Path) -> Path:
    return rig.image(name, SYSTEMD_HOOKS, [hooks, SYSTEMD_STAND_INS])


def assert_booted_by_systemd(out: Outcome) -> dict[str, str]:
    facts = assert_booted(out)
    # the login was ours, run by the unit, and systemd switched root
    assert "iSCSI: logged in; the target's disks are ready" in out.console, out.summary()
    assert "Switching root." in out.console, out.summary()
    return facts


def test_systemd_image_has_systemd_as_init_and_our_login_unit(
    rig: Rig, static_hooks: Path, tmp_path: Path
) -> None:
    """What the stand-in and our install/iscsi put in a systemd image."""
    root = tmp_path / "root"
    hookdirs = [static_hooks, SYSTEMD_STAND_INS, STAND_INS]
    cmd = [str(ASSEMBLER), "--kernel-version", rig.kernel.version,
           "--modules-root", str(rig.kernel.modules), "--output", str(tmp_path / "img"),
           "--keep-root", str(root)]  # fmt: skip
    for d in hookdirs:
        cmd += ["--hookdir", str(d)]
    subprocess.run([*cmd, *SYSTEMD_HOOKS], check=True, capture_output=True)
    assert (root / "init").readlink() == Path("usr/lib/systemd/systemd")
    assert (root / "usr/lib/systemd/systemd").is_file()
    assert (root / "etc/initrd-release").is_file()
    units = root / "usr/lib/systemd/system"
    for unit in ("initrd.target", "initrd-switch-root.service", "systemd-udevd.service",
                 "systemd-journald.service", "emergency.service"):  # fmt: skip
        assert (units / unit).is_file(), unit
    assert (units / "default.target").readlink() == Path("initrd.target")
    assert (root / "usr/lib/systemd/system-generators/systemd-fstab-generator").is_file()
    assert (root / UNIT).is_file()
    wants = units / "initrd-root-device.target.wants/iscsi-hookgen-login.service"
    assert wants.readlink() == Path("../iscsi-hookgen-login.service")
    assert (root / "usr/lib/systemd/system-generators/iscsi-hookgen-root-device").is_file()
    # busybox from our hook (no 'base' here), at Debian's path of it
    assert (root / "usr/bin/busybox").is_file()
    assert (root / "usr/lib/iscsi-hookgen/bin/udhcpc").readlink() == Path("/usr/bin/busybox")
    assert (root / "hooks/iscsi").is_file()
