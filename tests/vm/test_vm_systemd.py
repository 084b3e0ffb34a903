"""Issue 6's boots: a systemd-based initramfs (Debian's systemd as PID 1, built
by the rig's stand-in for mkinitcpio's systemd hook, tests/vm/rig/systemd),
where no run_hook runs and our login unit does the iSCSI login."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from rig import ibft, names
from rig.hookgen import PACKAGED, generate
from rig.scenario import STAND_INS, Outcome, Rig, assert_booted

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
    # systemd ran the initrd, and the login was ours (journald prefixes the
    # unit's output with the script's name, login[PID])
    assert "systemd[1]: Running in initrd." in out.console, out.summary()
    assert re.search(r"login\[\d+\]: :: iSCSI: logged in; the target's disks are ready",
                     out.console), out.summary()  # fmt: skip
    return facts


def test_systemd_image_has_systemd_as_init_and_our_login_unit(
    rig: Rig, static_hooks: Path, tmp_path: Path
) -> None:
    """What the stand-in and our install/iscsi put in a systemd image (the
    one the static boot below uses, unpacked)."""
    initrd = systemd_image(rig, "sd-static", static_hooks)
    root = tmp_path / "root"
    root.mkdir()
    unpacked = subprocess.run(
        f"zstd -dc {shlex.quote(str(initrd))} | cpio -idm --quiet --no-absolute-filenames",
        shell=True, cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert unpacked.returncode == 0, unpacked.stderr
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


def test_systemd_static_portal_with_static_ip(rig: Rig, static_hooks: Path) -> None:
    """Static portal, ip=CLIENT::GW:MASK::DEV:none applied by our routine."""
    initrd = systemd_image(rig, "sd-static", static_hooks)
    out = rig.boot("sd-static", initrd, f"{ROOT} {names.IP_STATIC}", timeout=BOOT_TIMEOUT)
    facts = assert_booted_by_systemd(out)
    assert facts["recovery_tmo"] == "86400"
    assert facts["address"] == f"{names.PORTAL}:3260"
    assert f"iSCSI: configuring eth0 as {names.GUEST_IP}/24 via {names.GATEWAY}" in out.console
    print(f"systemd static ip=: marker at {facts['uptime']} s, boot {out.result.seconds:.1f} s")


def test_systemd_static_portal_with_dhcp(rig: Rig, static_hooks: Path) -> None:
    """Static portal, ip=dhcp: busybox udhcpc against QEMU's internal DHCP."""
    initrd = systemd_image(rig, "sd-static", static_hooks)
    out = rig.boot("sd-dhcp", initrd, f"{ROOT} ip=dhcp", timeout=BOOT_TIMEOUT)
    facts = assert_booted_by_systemd(out)
    assert "iSCSI: DHCP on eth0" in out.console, out.summary()
    print(f"systemd ip=dhcp: marker at {facts['uptime']} s, boot {out.result.seconds:.1f} s")


def test_systemd_packaged_generic_hook_with_dracut_parameters(rig: Rig) -> None:
    """initcpio/ as shipped: its unit is gated by ConditionKernelCommandLine=,
    which only a real systemd evaluates; netroot= opens the gate."""
    initrd = systemd_image(rig, "sd-generic", PACKAGED)
    append = (
        f"{ROOT} ip=dhcp netroot=iscsi:{names.PORTAL}::3260::{names.TARGET_IQN}"
        f" rd.iscsi.initiator={names.INITIATOR_IQN}"
        " rd.iscsi.param=node.session.timeo.replacement_timeout=600"
    )
    out = rig.boot("sd-generic", initrd, append, timeout=BOOT_TIMEOUT)
    facts = assert_booted_by_systemd(out)
    assert facts["recovery_tmo"] == "600"
    print(f"systemd generic: marker at {facts['uptime']} s, boot {out.result.seconds:.1f} s")


def test_systemd_ibft(rig: Rig, tmp_path: Path) -> None:
    """iBFT: iscsistart -N and -b from the table handed over with -acpitable."""
    hooks = generate(tmp_path / "ibft", "--ibft")
    initrd = systemd_image(rig, "sd-ibft", hooks)
    table = tmp_path / "ibft.bin"
    table.write_bytes(ibft.build(ibft.Ibft()))
    out = rig.boot("sd-ibft", initrd, ROOT, timeout=BOOT_TIMEOUT, acpi_tables=(table,))
    facts = assert_booted_by_systemd(out)
    assert facts["address"] == f"{names.PORTAL}:3260"
    print(f"systemd iBFT: marker at {facts['uptime']} s, boot {out.result.seconds:.1f} s")


def test_systemd_dead_target_reaches_emergency_mode_with_our_message(
    rig: Rig, static_hooks: Path
) -> None:
    """Nothing answers at the portal: the unit gives up after its bounded
    retries (2 x (4 s + 2 s) here), its message is on the console, and
    OnFailure= takes the boot to emergency.target, well within the unit's
    start timeout (so the failure is ours, not systemd's timer)."""
    initrd = systemd_image(rig, "sd-static", static_hooks)
    append = f"{ROOT} {names.IP_STATIC} rd.iscsi.retries=2 rd.iscsi.timeout=4"
    out = rig.boot("sd-dead", initrd, append, timeout=BOOT_TIMEOUT, target=False)
    assert not out.result.timed_out, out.summary()
    assert out.marker is None, out.summary()
    assert re.search(r"ERROR: iSCSI: login to \S+ at \S+ failed after 2 attempts", out.console), (
        out.summary()
    )
    rescue = out.rescue
    assert rescue is not None and rescue.startswith("emergency.target"), out.summary()
    uptime = float(rescue.split("uptime=")[1].split()[0])
    # journald copies the unit's lines to the kernel log, with its timestamps
    said = [(float(m[1]), m[2]) for m in
            re.finditer(r"^\[\s*([0-9.]+)\] login\[\d+\]: (.*)$", out.console, re.M)]  # fmt: skip
    gave_up = next(t for t, line in said if "failed after 2 attempts" in line)
    login_seconds = gave_up - said[0][0]
    print(f"systemd dead target: the login gave up after {login_seconds:.1f} s")
    assert login_seconds <= 2 * (4 + 2) + 5, out.summary()
    install = (static_hooks / "install/iscsi").read_text()
    timeout = re.search(r"^TimeoutStartSec=(\d+)$", install, re.M)
    assert timeout is not None
    print(f"systemd dead target: emergency mode at {uptime:.1f} s guest uptime")
    assert uptime < int(timeout.group(1)), out.summary()
    # said before emergency mode, not after
    assert out.console.index("failed after 2 attempts") < out.console.index("VMTEST-RESCUE")
    assert "Timed out" not in out.console, out.summary()
