"""Writing the edited configuration: owner, mode, links, backup, faults, concurrent changes."""

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hooks_oracle import mkinitcpio_reads
from iscsi_hookgen import atomic, conf_edit
from iscsi_hookgen.conf_edit import ConfEditError

OLD = b"# mine\nMODULES=(ext4)\nHOOKS=(base udev autodetect block filesystems fsck)\n"
NEW = b"# mine\nMODULES=(ext4)\nHOOKS=(base udev autodetect net iscsi block filesystems fsck)\n"


def setup_root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/mkinitcpio.conf").write_bytes(OLD)
    return tmp_path


def ensure(root: Path) -> conf_edit.EditResult:
    return conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=True, dry_run=False)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".iscsi-hookgen.tmp" in p.name)


def test_mode_and_owner_are_kept_for_file_and_backup(tmp_path: Path) -> None:
    root = setup_root(tmp_path)
    conf = root / "etc/mkinitcpio.conf"
    os.chown(conf, 4321, 4322)  # CI runs as root: another user's file
    os.chmod(conf, 0o640)
    result = ensure(root)
    assert conf.read_bytes() == NEW
    st = conf.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4321, 4322, 0o640)
    assert result.backup == root / "etc/mkinitcpio.conf.iscsi-hookgen.bak"
    assert result.backup.read_bytes() == OLD
    bst = result.backup.stat()
    assert (bst.st_uid, bst.st_gid, bst.st_mode & 0o7777) == (4321, 4322, 0o640)
    assert leftovers(root / "etc") == []


def test_private_file_gets_a_private_backup_even_over_an_old_one(tmp_path: Path) -> None:
    root = setup_root(tmp_path)
    conf = root / "etc/mkinitcpio.conf"
    os.chmod(conf, 0o600)
    old_backup = root / "etc/mkinitcpio.conf.iscsi-hookgen.bak"
    old_backup.write_bytes(b"stale\n")
    os.chmod(old_backup, 0o644)
    ensure(root)
    assert old_backup.read_bytes() == OLD
    assert old_backup.stat().st_mode & 0o7777 == 0o600


def test_symlinked_config_is_edited_where_it_lives(tmp_path: Path) -> None:
    root = setup_root(tmp_path)
    real = root / "srv/config/mkinitcpio.conf"
    real.parent.mkdir(parents=True)
    (root / "etc/mkinitcpio.conf").rename(real)
    link = root / "etc/mkinitcpio.conf"
    link.symlink_to("../srv/config/mkinitcpio.conf")
    result = ensure(root)
    assert link.is_symlink() and os.readlink(link) == "../srv/config/mkinitcpio.conf"
    assert real.read_bytes() == NEW
    assert result.backup == real.with_name("mkinitcpio.conf.iscsi-hookgen.bak")
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["mkinitcpio.conf"]


def test_symlinked_dropin_and_backup_mkinitcpio_ignores(tmp_path: Path) -> None:
    root = setup_root(tmp_path)
    d = root / "etc/mkinitcpio.conf.d"
    d.mkdir()
    shared = root / "shared-hooks.conf"
    shared.write_text("HOOKS=(base udev lvm2 filesystems)\n")
    (d / "20-hooks.conf").symlink_to(shared)
    (d / "30-broken.conf").symlink_to(root / "missing.conf")  # find -xtype f skips it
    result = ensure(root)
    assert result.path == d / "20-hooks.conf"
    assert shared.read_text() == "HOOKS=(base udev net iscsi lvm2 filesystems)\n"
    assert (d / "20-hooks.conf").is_symlink()
    assert result.backup == root / "shared-hooks.conf.iscsi-hookgen.bak"
    # the backup beside a drop-in is not *.conf, so mkinitcpio does not read it
    (d / "20-hooks.conf.iscsi-hookgen.bak").write_text("HOOKS=(broken)\n")
    seen = mkinitcpio_reads(root / "etc/mkinitcpio.conf")
    assert seen.hooks == ["base", "udev", "net", "iscsi", "lvm2", "filesystems"]
    assert (root / "etc/mkinitcpio.conf").read_bytes() == OLD


Fault = Callable[..., Any]


def _fd_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def _inject(monkeypatch: pytest.MonkeyPatch, op: str, stage: str, code: int) -> None:
    """Make `op` fail with `code` on the temporary file of `stage` (backup or config)."""

    def ours(name: str) -> bool:
        if ".iscsi-hookgen.tmp" not in name:
            return False
        return (".bak." in name) == (stage == "backup")

    real: Fault = getattr(os, op)

    def fail(*args: Any) -> Any:
        name = args[0] if op == "rename" else _fd_name(args[0])
        if ours(str(name)):
            raise OSError(code, os.strerror(code))
        return real(*args)

    monkeypatch.setattr(atomic.os, op, fail)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EIO])
@pytest.mark.parametrize("op", ["write", "fsync", "rename"])
@pytest.mark.parametrize("stage", ["backup", "config"])
def test_faults_leave_the_original_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, op: str, code: int
) -> None:
    root = setup_root(tmp_path)
    conf = root / "etc/mkinitcpio.conf"
    _inject(monkeypatch, op, stage, code)
    with pytest.raises(ConfEditError) as e:
        ensure(root)
    message = str(e.value)
    assert conf.read_bytes() == OLD
    assert leftovers(root / "etc") == []
    assert os.strerror(code) in message and errno.errorcode[code] in message
    assert f"{conf} is unchanged" in message
    assert "\n" not in message
    backup = root / "etc/mkinitcpio.conf.iscsi-hookgen.bak"
    if stage == "backup":
        assert "backup" in message and not backup.exists()
    else:
        assert backup.read_bytes() == OLD


def test_directory_fsync_failure_after_rename_is_reported_honestly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = setup_root(tmp_path)
    conf = root / "etc/mkinitcpio.conf"
    real = os.fsync

    def fail(fd: int) -> None:
        if _fd_name(fd) == str(conf.parent) and conf.read_bytes() == NEW:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fail)
    with pytest.raises(ConfEditError, match="holds the new content but may not survive a crash"):
        ensure(root)
    assert leftovers(root / "etc") == []


def test_change_between_read_and_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = setup_root(tmp_path)
    conf = root / "etc/mkinitcpio.conf"
    theirs = OLD + b"COMPRESSION=zstd\n"
    real_verify = conf_edit.verify

    def verify_then_someone_writes(plan: conf_edit.Plan) -> conf_edit.Analysis:
        result = real_verify(plan)
        conf.write_bytes(theirs)
        return result

    monkeypatch.setattr(conf_edit, "verify", verify_then_someone_writes)
    with pytest.raises(ConfEditError, match="changed on disk"):
        ensure(root)
    assert conf.read_bytes() == theirs
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["mkinitcpio.conf"]


def test_new_dropin_between_read_and_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = setup_root(tmp_path)
    real_verify = conf_edit.verify

    def verify_then_dropin(plan: conf_edit.Plan) -> conf_edit.Analysis:
        result = real_verify(plan)
        (root / "etc/mkinitcpio.conf.d").mkdir()
        (root / "etc/mkinitcpio.conf.d/x.conf").write_text("HOOKS=(base)\n")
        return result

    monkeypatch.setattr(conf_edit, "verify", verify_then_dropin)
    with pytest.raises(ConfEditError, match="changed on disk"):
        ensure(root)
    assert (root / "etc/mkinitcpio.conf").read_bytes() == OLD


def test_change_during_the_atomic_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = setup_root(tmp_path)
    conf = root / "etc/mkinitcpio.conf"
    theirs = b"HOOKS=(theirs)\n"
    real = os.fsync

    def fsync_while_someone_writes(fd: int) -> None:
        name = _fd_name(fd)
        if ".mkinitcpio.conf.iscsi-hookgen.tmp" in name:
            conf.write_bytes(theirs)
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync_while_someone_writes)
    with pytest.raises(ConfEditError, match="changed on disk while it was being edited"):
        ensure(root)
    assert conf.read_bytes() == theirs
    assert leftovers(root / "etc") == []


def test_symlinked_dropin_directory_is_ignored_like_mkinitcpio_does(tmp_path: Path) -> None:
    root = setup_root(tmp_path)
    real = root / "srv/dropins"
    real.mkdir(parents=True)
    (real / "10-hooks.conf").write_text("HOOKS=(base udev lvm2)\n")
    (root / "etc/mkinitcpio.conf.d").symlink_to(real)
    assert mkinitcpio_reads(root / "etc/mkinitcpio.conf").hooks[-1] == "fsck"
    result = ensure(root)
    assert result.path == root / "etc/mkinitcpio.conf"
    assert any("is a symlink, so mkinitcpio reads none" in m for m in result.messages)
    assert (real / "10-hooks.conf").read_text() == "HOOKS=(base udev lvm2)\n"
