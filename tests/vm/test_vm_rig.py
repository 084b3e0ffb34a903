"""The rig itself, proven with the wiki-style baseline hook (tests/vm/baseline),
so a failure in the scenario tests points at our hooks, not at the rig."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rig import names
from rig.scenario import ASSEMBLER, STAND_INS, Rig

HERE = Path(__file__).parent
BASELINE = HERE / "baseline"
WIKI_HOOKS = ["base", "udev", "net", "iscsi", "block", "filesystems"]


def test_baseline_static_boot_reaches_the_iscsi_root(rig: Rig) -> None:
    initrd = rig.image("baseline-static", WIKI_HOOKS, [BASELINE / "static"])
    out = rig.boot("baseline-static", initrd, f"root=/dev/sda {names.IP_STATIC}", timeout=150)
    facts = out.marker
    assert facts is not None, out.summary()
    assert facts["root"] == "/dev/sda"
    assert facts["sessions"] == "1"
    assert facts["target"] == names.TARGET_IQN
    assert facts["address"] == f"{names.PORTAL}:3260"
    assert facts["disk"] == "sda"
    assert out.written == out.token  # the guest's write reached the LUN's file
    assert out.result.returncode == 0  # powered off, not killed
    events = [e for _, e in out.times()]
    assert "start run_hook iscsi" in events and any(e.startswith("rootdev") for e in events)


def _assemble(rig: Rig, tmp_path: Path, hooks: list[str], hookdir: Path) -> Path:
    root = tmp_path / "root"
    subprocess.run(
        [
            str(ASSEMBLER),
            "--kernel-version",
            rig.kernel.version,
            "--modules-root",
            str(rig.kernel.modules),
            "--output",
            str(tmp_path / "img"),
            "--keep-root",
            str(root),
            "--hookdir",
            str(hookdir),
            "--hookdir",
            str(STAND_INS),
            *hooks,
        ],
        check=True,
        capture_output=True,
    )
    return root


def test_assembler_honours_the_build_hook_contract(rig: Rig, tmp_path: Path) -> None:
    hookdir = tmp_path / "hooks"
    (hookdir / "install").mkdir(parents=True)
    (hookdir / "hooks").mkdir()
    (hookdir / "install" / "probe").write_text(
        "build() {\n"
        "    add_module iscsi_tcp\n"
        "    add_module 'no_such_module?' || return 1\n"
        "    ! add_module no_such_module 2>/dev/null || return 1\n"
        "    add_module crc32c\n"  # an alias, not a file name
        "    map add_binary iscsistart || return 1\n"
        "    ! map add_binary /no/such /no/such2 2>/dev/null || return 1\n"
        "    echo secret | add_file - /etc/probe-secret 600\n"
        "    add_symlink /usr/bin/probe-link busybox\n"
        "    add_dir /var/probe 700\n"
        "    add_runscript\n"
        "}\n"
    )
    (hookdir / "hooks" / "probe").write_text(
        "#!/usr/bin/ash\nrun_hook () {\n    :\n}\nrun_latehook() {\n    :\n}\n"
    )
    root = _assemble(rig, tmp_path, ["base", "probe"], hookdir)
    mods = root / "usr/lib/modules" / rig.kernel.version
    dep = (mods / "modules.dep").read_text()
    for needed in (
        "iscsi_tcp.ko",
        "libiscsi_tcp.ko",
        "libiscsi.ko",
        "scsi_transport_iscsi.ko",
        "crc32c_generic.ko",
    ):
        assert needed in dep, needed
    assert (root / "usr/sbin/iscsistart").is_file()
    assert list((root / "usr/lib").rglob("libopeniscsiusr.so*"))
    assert (root / "etc/probe-secret").read_text() == "secret\n"
    assert (root / "etc/probe-secret").stat().st_mode & 0o777 == 0o600
    assert (root / "usr/bin/probe-link").readlink() == Path("busybox")
    assert (root / "var/probe").stat().st_mode & 0o777 == 0o700
    assert (root / "hooks/probe").stat().st_mode & 0o777 == 0o755
    config = (root / "config").read_text()
    assert 'HOOKS="probe"' in config and 'LATEHOOKS="probe"' in config


def test_init_parses_the_command_line_like_mkinitcpio(tmp_path: Path) -> None:
    """parse_cmdline/getarg of the rig's init_functions under busybox ash."""
    # The functions go in by value: /tmp is replaced below, and the checkout
    # may live under it.
    script = (
        (STAND_INS / "init_functions").read_text() + "\n"
        "parse_cmdline <<'EOF'\n"
        'rw quiet a=1 rd.x=first rd.x=second q="two words" flag # c=ignored\n'
        "EOF\n"
        "cat /tmp/cmdline\n"
        'echo "getarg=$(getarg rd.x) default=$(getarg nope dflt) rw=$rwopt a=$a"\n'
    )
    ns = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs t /tmp && busybox ash -s",
        ],
        input=script,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ns.splitlines()[:7] == [
        "rw=y",
        "quiet=y",
        "a=1",
        "rd.x=first",
        "rd.x=second",
        "q=two words",
        "flag=y",
    ]
    assert "getarg=second default=dflt rw=rw a=1" in ns


def test_rig_shell_passes_shellcheck() -> None:
    rig_dir = STAND_INS.parent
    bash = [rig_dir / "assemble", *sorted((STAND_INS / "install").iterdir())]
    bash += sorted((rig_dir / "systemd" / "install").iterdir())
    bash += [BASELINE / "static/install/iscsi"]
    ash = [
        STAND_INS / "init",
        STAND_INS / "init_functions",
        *sorted((STAND_INS / "hooks").iterdir()),
    ]
    ash += sorted(BASELINE.glob("*/hooks/iscsi"))
    for shell, files in (("bash", bash), ("dash", ash)):
        done = subprocess.run(
            ["shellcheck", "-s", shell, "-e", "SC2187,SC3043", *map(str, files)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout
