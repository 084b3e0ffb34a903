"""The iscsi-hookgen command: what it writes, what it refuses, what it prints."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from iscsi_hookgen.cli import main
from samples import INITIATOR, SECRET, TARGET

REPO = Path(__file__).parent.parent
STATIC = ["--portal", "192.0.2.10", "--target", TARGET]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch system root as pacstrap leaves it: open-iscsi's initiator name, no hooks."""
    root = tmp_path / "root"
    (root / "etc/iscsi").mkdir(parents=True)
    (root / "etc/iscsi/initiatorname.iscsi").write_text(f"InitiatorName={INITIATOR}\n")
    return root


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mode)
        for p in sorted(directory.rglob("*"))
    }


def test_static_writes_both_hooks_into_root_etc_initcpio(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(root), *STATIC]) == 0
    install = root / "etc/initcpio/install/iscsi"
    hook = root / "etc/initcpio/hooks/iscsi"
    assert stat.S_IMODE(install.stat().st_mode) == 0o644
    assert stat.S_IMODE(hook.stat().st_mode) == 0o644
    assert f"iscsi_gen_initiator={INITIATOR}" in hook.read_text()
    assert not (root / "etc/initcpio/iscsi-chap").exists()
    out = capsys.readouterr().out
    assert f"wrote: {hook}" in out
    assert "'net iscsi'" in out and f"arch-chroot {root} mkinitcpio -P" in out


def test_second_identical_run_changes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--root", str(root), *STATIC])
    before = snapshot(root)
    capsys.readouterr()
    assert main(["--root", str(root), *STATIC]) == 0
    assert snapshot(root) == before
    assert capsys.readouterr().out.count("unchanged:") == 2


def test_dry_run_prints_the_files_and_writes_nothing(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    before = snapshot(root)
    assert (
        main(
            [
                "--root",
                str(root),
                *STATIC,
                "--dry-run",
                "--chap-user",
                "arch",
                "--chap-secret-file",
                str(secret),
            ]
        )
        == 0
    )
    assert snapshot(root) == before
    out = capsys.readouterr().out
    assert f"--- would write {root}/etc/initcpio/hooks/iscsi (0644)" in out
    assert "run_hook()" in out and "build()" in out
    assert f"--- would write {root}/etc/initcpio/iscsi-chap (0600)" in out
    assert SECRET not in out


def test_chap_secret_goes_to_a_0600_file_only(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    assert (
        main(
            ["--root", str(root), *STATIC, "--chap-user", "arch", "--chap-secret-file", str(secret)]
        )
        == 0
    )
    chap = root / "etc/initcpio/iscsi-chap"
    assert stat.S_IMODE(chap.stat().st_mode) == 0o600
    assert f"iscsi_chap_password={SECRET}" in chap.read_text()
    for hook in ("install/iscsi", "hooks/iscsi"):
        assert SECRET not in (root / "etc/initcpio" / hook).read_text()


def test_a_world_readable_chap_file_is_made_0600_again(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    args = ["--root", str(root), *STATIC, "--chap-user", "arch", "--chap-secret-file", str(secret)]
    main(args)
    chap = root / "etc/initcpio/iscsi-chap"
    chap.chmod(0o644)
    assert main(args) == 0
    assert stat.S_IMODE(chap.stat().st_mode) == 0o600


def test_existing_mode_and_owner_of_a_hook_are_kept(root: Path) -> None:
    main(["--root", str(root), *STATIC])
    hook = root / "etc/initcpio/hooks/iscsi"
    hook.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(hook, 4321, 4321)
    assert main(["--root", str(root), *STATIC, "--resilient"]) == 0
    assert "replacement_timeout=86400" in hook.read_text()
    assert stat.S_IMODE(hook.stat().st_mode) == 0o640
    if os.geteuid() == 0:
        assert (hook.stat().st_uid, hook.stat().st_gid) == (4321, 4321)


def test_refuses_to_overwrite_a_hand_written_hook_unless_forced(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = root / "etc/initcpio/hooks/iscsi"
    hook.parent.mkdir(parents=True)
    hook.write_text("run_hook() { iscsistart -b; }\n")
    before = snapshot(root)
    assert main(["--root", str(root), "--ibft"]) == 2
    assert snapshot(root) == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was not written by iscsi-hookgen" in err
    assert main(["--root", str(root), "--ibft", "--force"]) == 0
    assert "iscsi_gen_mode=ibft" in hook.read_text()


def test_output_directory_layout(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path / "out"), "--ibft"]) == 0
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix()
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    ) == ["hooks/iscsi", "install/iscsi"]


def test_packaged_initcpio_is_exactly_what_the_generator_renders(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path), "--generic"]) == 0
    for name in ("install/iscsi", "hooks/iscsi"):
        assert (tmp_path / name).read_bytes() == (REPO / "initcpio" / name).read_bytes(), (
            f"initcpio/{name} is stale: run iscsi-hookgen --generic --output initcpio"
        )


def test_header_names_the_command_that_regenerates_the_hooks(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    main(
        [
            "--root",
            str(root),
            *STATIC,
            "--tpgt",
            "3",
            "--retries",
            "4",
            "--chap-user",
            "u",
            "--chap-secret-file",
            str(secret),
        ]
    )
    header = (root / "etc/initcpio/hooks/iscsi").read_text().splitlines()[3]
    assert header == (
        f"# Regenerate with: iscsi-hookgen --portal 192.0.2.10:3260 --target {TARGET} "
        f"--initiator {INITIATOR} --tpgt 3 --chap-user u --chap-secret-file {secret} "
        "--retries 4"
    )


def test_runs_as_a_module_and_as_the_console_script(tmp_path: Path) -> None:
    for command in ([sys.executable, "-m", "iscsi_hookgen"], ["iscsi-hookgen"]):
        out = tmp_path / command[-1]
        done = subprocess.run(
            [*command, "--output", str(out), "--ibft"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO / "generator")},
        )
        assert done.returncode == 0, done.stderr
        assert (out / "hooks/iscsi").is_file()


# --- bad input: exit 2, one line naming the value and what is accepted, nothing written ---

BAD_INPUT = [
    ([], "say what to log in to"),
    (["--portal", "storage.example.org", "--target", TARGET], "'storage.example.org' is not an IP"),
    (["--portal", "192.0.2.10:0", "--target", TARGET], "'0' is not a whole number from 1 to 65535"),
    (["--portal", "192.0.2.10:99999", "--target", TARGET], "from 1 to 65535"),
    (["--portal", "[2001:db8::1", "--target", TARGET], "expected [IPV6]:PORT"),
    (["--portal", "0.0.0.0", "--target", TARGET], "not a unicast address"),
    (["--portal", "fe80::1%eth0", "--target", TARGET], "zone index"),
    (["--portal", "192.0.2.10"], "--portal needs --target"),
    (["--portal", "192.0.2.10", "--target", "iqn.11-03.org.example:x"], "is not an iSCSI name"),
    (["--portal", "192.0.2.10", "--target", "iqn.2011-13.org.example:x"], "is not an iSCSI name"),
    (["--portal", "192.0.2.10", "--target", "eui.12345"], "eui.<16 hex digits>"),
    (
        ["--portal", "192.0.2.10", "--target", "iqn.2011-03.org.example:a b"],
        "'iqn.2011-03.org.example:a b'",
    ),
    (["--portal", "192.0.2.10", "--target", f"{TARGET};reboot"], "is not an iSCSI name"),
    ([*STATIC, "--initiator", "$(reboot)"], "--initiator '$(reboot)' is not an iSCSI name"),
    ([*STATIC, "--tpgt", "0"], "--tpgt '0' is not a whole number from 1 to 65535"),
    ([*STATIC, "-P", "replacement_timeout=5"], "is not NAME=VALUE with an iscsid.conf name"),
    ([*STATIC, "-P", "node.session.timeo.replacement_timeout"], "is not NAME=VALUE"),
    ([*STATIC, "-P", "node.session.x=a\nb"], "without control characters"),
    ([*STATIC, "-P", "node.session.auth.password=x"], "use --chap-user and --chap-secret-file"),
    ([*STATIC, "--retries", "0"], "--retries '0' is not a whole number from 1 to 100"),
    ([*STATIC, "--retry-delay", "-1"], "--retry-delay '-1'"),
    ([*STATIC, "--attempt-timeout", "x"], "--attempt-timeout 'x'"),
    ([*STATIC, "--nic-module", "e1000e;reboot"], "is not a kernel module name"),
    ([*STATIC, "--chap-user", "arch"], "--chap-user and --chap-secret-file go together"),
    ([*STATIC, "--chap-user", "a b", "--chap-secret-file", "{secret}"], "printable characters"),
    ([*STATIC, "--chap-user", "u", "--chap-secret-file", "/nonexistent/s"], "cannot read"),
    ([*STATIC, "--chap-user", "u", "--chap-secret-file", "{bad_secret}"], "control characters"),
    ([*STATIC, "--chap-in-user", "t", "--chap-in-secret-file", "{secret}"], "needs outgoing CHAP"),
    (["--ibft", "--target", TARGET], "--target belongs to static-portal mode"),
    (["--ibft", "--portal", "192.0.2.10"], "not allowed with argument"),
    (["--generic", "--initiator", INITIATOR], "--initiator belongs to static-portal mode"),
    (["--ibft", "--no-such-option"], "unrecognized arguments: --no-such-option"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    bad_secret = tmp_path / "bad-secret"
    bad_secret.write_text("two\nlines\n")
    args = [a.format(secret=secret, bad_secret=bad_secret) for a in args]
    before = snapshot(root)
    assert exit_status(["--root", str(root), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("iscsi-hookgen: error: ") and err.count("\n") == 1, err
    assert message in err
    assert SECRET not in err
    assert snapshot(root) == before


def exit_status(argv: list[str]) -> int:
    """main's return value, or the status argparse exits with."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


def test_missing_initiator_name_file_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(tmp_path), *STATIC]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/etc/iscsi/initiatorname.iscsi cannot be read" in err
    assert "--initiator" in err


def test_short_chap_secret_warns_without_showing_it(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("Zq9x7\n")
    assert (
        main(["--root", str(root), *STATIC, "--chap-user", "u", "--chap-secret-file", str(secret)])
        == 0
    )
    err = capsys.readouterr().err
    assert "warning:" in err and "has 5 characters" in err and "Zq9x7" not in err


def test_uppercase_vendor_target_names_are_accepted(root: Path) -> None:
    synology = "iqn.2000-01.com.synology:DiskStation.Target-1.5a3b2c"
    assert main(["--root", str(root), "--portal", "192.0.2.10", "--target", synology]) == 0
