"""`iscsi-hookgen hooks ...` and the main command's HOOKS step, as a user runs them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iscsi_hookgen.cli import main
from samples import INITIATOR, TARGET

REPO = Path(__file__).parent.parent
BUSYBOX = "MODULES=()\nHOOKS=(base udev autodetect modconf block filesystems fsck)\n"
SYSTEMD = "HOOKS=(base systemd autodetect modconf sd-vconsole block filesystems fsck)\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/iscsi").mkdir(parents=True)
    (root / "etc/iscsi/initiatorname.iscsi").write_text(f"InitiatorName={INITIATOR}\n")
    (root / "etc/mkinitcpio.conf").write_text(BUSYBOX)
    return root


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as e:
        status = int(e.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_show_prints_one_line_and_the_deciding_file(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = root / "etc/mkinitcpio.conf.d"
    d.mkdir()
    (d / "10-hooks.conf").write_text("HOOKS=(base  udev\n  block)\n")
    (d / "20-more.conf").write_text("HOOKS+=(fsck)\n")
    status, out, err = run(["hooks", "show", "--root", str(root)], capsys)
    assert status == 0
    assert out == "base udev block fsck\n"
    assert f"decided by {d / '10-hooks.conf'} and appended to by {d / '20-more.conf'}" in err
    assert "a busybox-based image" in err
    (d / "20-more.conf").write_text("HOOKS+=(systemd)\n")
    err = run(["hooks", "show", "--root", str(root)], capsys)[2]
    assert "a systemd-based image" in err and "'net'" not in err
    (d / "20-more.conf").write_text("HOOKS+=(systemd net)\n")
    err = run(["hooks", "show", "--root", str(root)], capsys)[2]
    assert "note: 'net' is a busybox runtime hook, which a systemd-based image never runs" in err


def test_show_with_config_ignores_dropins(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/mkinitcpio.conf.d").mkdir()
    (root / "etc/mkinitcpio.conf.d/1.conf").write_text("HOOKS=(x)\n")
    conf = root / "etc/mkinitcpio.conf"
    status, out, _ = run(["hooks", "show", "--config", str(conf)], capsys)
    assert (status, out) == (0, "base udev autodetect modconf block filesystems fsck\n")


def test_add_dry_run_prints_a_diff_and_writes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(root)
    status, out, _ = run(["hooks", "add", "net", "iscsi", "--dry-run", "--root", str(root)], capsys)
    assert status == 0
    assert "-HOOKS=(base udev autodetect modconf block filesystems fsck)" in out
    assert "+HOOKS=(base udev autodetect modconf net iscsi block filesystems fsck)" in out
    assert snapshot(root) == before


def test_add_then_check_then_remove(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = root / "etc/mkinitcpio.conf"
    assert run(["hooks", "check", "--root", str(root)], capsys)[0] == 1
    status, out, _ = run(["hooks", "add", "iscsi", "--root", str(root)], capsys)
    assert status == 0 and "added 'iscsi' before 'block'" in out
    assert "iscsi block" in conf.read_text()
    status, out, _ = run(["hooks", "check", "--root", str(root)], capsys)
    assert status == 0 and out.startswith("HOOKS is right")
    status, _, err = run(["hooks", "check", "net", "iscsi", "--root", str(root)], capsys)
    assert status == 1 and "'net' is missing" in err and err.count("\n") == 1
    status, out, _ = run(["hooks", "add", "iscsi", "--root", str(root)], capsys)
    assert status == 0 and "nothing to change" in out
    assert run(["hooks", "remove", "iscsi", "--root", str(root)], capsys)[0] == 0
    assert conf.read_text() == BUSYBOX


def test_check_flags_a_misordered_hook(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/mkinitcpio.conf").write_text("HOOKS=(base udev block iscsi)\n")
    status, _, err = run(["hooks", "check", "--root", str(root)], capsys)
    assert status == 1 and "'iscsi' comes after 'block' but must come before it" in err


def test_check_includes_a_present_net(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/mkinitcpio.conf").write_text("HOOKS=(base udev iscsi net block)\n")
    status, _, err = run(["hooks", "check", "--root", str(root)], capsys)
    assert status == 1 and "'net' comes after 'iscsi' but must come before it" in err
    assert run(["hooks", "check", "iscsi", "--root", str(root)], capsys)[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["hooks", "add", "net", "iscsi"], "not adding 'net': it is a busybox runtime hook"),
        (["hooks", "add", "lvm2"], "no ordering rule"),
        (["hooks", "add", "bad name"], "is not a hook name"),
        (["hooks", "add"], "needs at least one hook name"),
        (["hooks", "show", "iscsi"], "takes no hook names"),
        (["hooks", "frobnicate"], "invalid choice"),
        (["hooks", "show", "--config", "/nonexistent/x.conf"], "no such file"),
        (["hooks", "show", "--config", "x.conf"], "not both"),
    ],
)
def test_errors_are_one_line_exit_2_nothing_written(
    root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    if "'net'" in message:
        (root / "etc/mkinitcpio.conf").write_text(SYSTEMD)
    before = snapshot(root)
    argv = [*argv, "--root", str(root)] if "--config" not in argv else argv
    if message == "not both":
        argv += ["--root", str(root)]
    status, out, err = run(argv, capsys)
    assert status == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("iscsi-hookgen: ") and message in err, err
    assert snapshot(root) == before


def test_ibft_run_adds_iscsi_and_a_second_run_changes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = root / "etc/mkinitcpio.conf"
    status, out, _ = run(["--root", str(root), "--ibft"], capsys)
    assert status == 0
    assert conf.read_text() == BUSYBOX.replace("modconf block", "modconf iscsi block")
    assert "added 'iscsi' before 'block'" in out
    assert "In HOOKS" not in out  # done, so not left as a step
    before = snapshot(root)
    status, out, _ = run(["--root", str(root), "--ibft"], capsys)
    assert status == 0 and snapshot(root) == before
    assert "HOOKS is already right" in out and out.count("unchanged:") == 2


def test_portal_run_adds_net_and_iscsi(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        ["--root", str(root), "--portal", "192.0.2.10", "--target", TARGET], capsys
    )
    assert status == 0
    assert "modconf net iscsi block" in (root / "etc/mkinitcpio.conf").read_text()
    assert "  1. Install mkinitcpio-nfs-utils" in out


def test_no_edit_prints_the_change_instead(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["--root", str(root), "--ibft", "--no-edit"], capsys)
    assert status == 0
    assert (root / "etc/mkinitcpio.conf").read_text() == BUSYBOX
    assert (root / "etc/initcpio/hooks/iscsi").exists()
    assert "+HOOKS=(base udev autodetect modconf iscsi block filesystems fsck)" in out
    assert "In HOOKS" in out


def test_no_edit_leaves_out_the_hooks_step_when_hooks_is_already_right(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["--root", str(root), "--ibft"], capsys)
    status, out, _ = run(["--root", str(root), "--ibft", "--no-edit"], capsys)
    assert status == 0
    assert "HOOKS is already right" in out
    assert "In HOOKS" not in out


def test_dry_run_shows_the_hooks_diff_and_writes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(root)
    status, out, _ = run(["--root", str(root), "--ibft", "--dry-run"], capsys)
    assert status == 0 and snapshot(root) == before
    assert "+HOOKS=(base udev autodetect modconf iscsi block filesystems fsck)" in out


def test_systemd_check_flags_iscsi_before_systemd_and_net(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = root / "etc/mkinitcpio.conf"
    conf.write_text("HOOKS=(base iscsi systemd autodetect block filesystems)\n")
    status, _, err = run(["hooks", "check", "--root", str(root)], capsys)
    assert status == 1 and err.count("\n") == 1
    assert "'iscsi' comes before 'systemd' but must come after it" in err
    assert "would never log in" in err
    conf.write_text("HOOKS=(base systemd autodetect net iscsi block filesystems)\n")
    status, _, err = run(["hooks", "check", "--root", str(root)], capsys)
    assert status == 1 and "'net' is a busybox runtime hook" in err and "remove it" in err
    conf.write_text("HOOKS=(base systemd autodetect iscsi block filesystems)\n")
    status, out, _ = run(["hooks", "check", "--root", str(root)], capsys)
    assert status == 0 and out.startswith("HOOKS is right")


@pytest.mark.parametrize(
    "mode",
    [
        ["--ibft"],
        ["--generic"],
        ["--portal", "192.0.2.10", "--target", TARGET],
    ],
    ids=["ibft", "generic", "portal"],
)
def test_main_flow_on_a_systemd_root_adds_iscsi_only(
    root: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    conf = root / "etc/mkinitcpio.conf"
    conf.write_text(SYSTEMD)
    status, out, err = run(["--root", str(root), *mode], capsys)
    assert status == 0, err
    assert conf.read_text() == SYSTEMD.replace("sd-vconsole block", "sd-vconsole iscsi block")
    assert "added 'iscsi' before 'block'" in out
    steps = out[out.index("Next steps:") :]
    assert "In HOOKS" not in steps and "'net'" not in steps and "nfs-utils" not in steps
    if "--portal" in mode:
        assert "no 'net' (the iscsi hook applies ip= itself)" in out
        assert "  1. Add ip=dhcp (or ip=CLIENT::GATEWAY:NETMASK::DEVICE:none)" in steps
        assert "in a systemd-based image the iscsi hook brings the network up" in steps
    else:
        assert "ip=" not in steps
    assert f"  {2 if '--portal' in mode else 1}. Rebuild the images" in steps
    before = snapshot(root)
    status, out, _ = run(["--root", str(root), *mode], capsys)
    assert status == 0 and snapshot(root) == before and "HOOKS is already right" in out


def test_main_flow_on_a_systemd_root_removes_net(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = root / "etc/mkinitcpio.conf"
    conf.write_text(SYSTEMD.replace("modconf", "modconf net iscsi"))
    status, out, _ = run(
        ["--root", str(root), "--portal", "192.0.2.10", "--target", TARGET], capsys
    )
    assert status == 0
    assert conf.read_text() == SYSTEMD.replace("modconf", "modconf iscsi")  # iscsi was right
    assert "removed 'net', a busybox runtime hook, which a systemd-based image never runs" in out
    assert run(["hooks", "check", "--root", str(root)], capsys)[0] == 0


def test_no_edit_on_a_systemd_root(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/mkinitcpio.conf").write_text(SYSTEMD)
    status, out, _ = run(
        ["--root", str(root), "--portal", "192.0.2.10", "--target", TARGET, "--no-edit"], capsys
    )
    assert status == 0 and (root / "etc/mkinitcpio.conf").read_text() == SYSTEMD
    assert (
        "+HOOKS=(base systemd autodetect modconf sd-vconsole iscsi block filesystems fsck)" in out
    )
    steps = out[out.index("Next steps:") :]
    assert "  1. In HOOKS (mkinitcpio.conf), put 'iscsi' after 'base systemd'" in steps
    assert "no 'net' in a systemd-based image" in steps and "nfs-utils" not in steps
    assert "  2. Add ip=dhcp" in steps


def test_output_names_both_kinds_in_the_next_steps(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        ["--output", str(tmp_path / "out"), "--portal", "192.0.2.10", "--target", TARGET,
         "--initiator", TARGET],
        capsys,
    )  # fmt: skip
    assert status == 0
    steps = out[out.index("Next steps:") :]
    assert "'net iscsi' after 'base udev' in a busybox-based image" in steps
    assert "'iscsi' after 'base systemd' in a systemd-based one" in steps
    assert "a busybox-based image also needs mkinitcpio-nfs-utils" in steps


def test_busybox_next_steps_are_unchanged(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        ["--root", str(root), "--portal", "192.0.2.10", "--target", TARGET, "--no-edit"], capsys
    )
    assert status == 0
    steps = out[out.index("Next steps:") :]
    assert "  1. In HOOKS (mkinitcpio.conf), put 'net iscsi' after 'base udev'" in steps
    assert "  2. Install mkinitcpio-nfs-utils" in steps and "systemd" not in steps


def test_root_without_mkinitcpio_says_hooks_not_edited(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "etc/mkinitcpio.conf").unlink()
    status, out, err = run(["--root", str(root), "--ibft"], capsys)
    assert status == 0 and "HOOKS not edited" in err and "In HOOKS" in out


def test_as_a_process(root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "generator")}
    done = subprocess.run(
        [sys.executable, "-m", "iscsi_hookgen", "hooks", "add", "iscsi", "--root", str(root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "iscsi_hookgen", "hooks", "show", "--root", str(root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.stdout == "base udev autodetect modconf iscsi block filesystems fsck\n"
