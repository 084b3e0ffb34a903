"""The HOOKS editor on hand-written configurations: layouts, moves, drop-ins, refusals."""

import socket
from pathlib import Path

import pytest

from hooks_oracle import assert_iscsi_placed, mkinitcpio_reads
from iscsi_hookgen import conf_edit
from iscsi_hookgen.conf_edit import ConfEditError
from iscsi_hookgen.config import InputError


def make_root(tmp_path: Path, main: str | bytes, dropins: dict[str, str] | None = None) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "mkinitcpio.conf").write_bytes(main.encode() if isinstance(main, str) else main)
    for name, text in (dropins or {}).items():
        (etc / "mkinitcpio.conf.d").mkdir(exist_ok=True)
        (etc / "mkinitcpio.conf.d" / name).write_text(text)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def ensure(root: Path, *, with_net: bool = True, dry_run: bool = False) -> conf_edit.EditResult:
    return conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=with_net, dry_run=dry_run)


def edited(tmp_path: Path, main: str, *, with_net: bool = True) -> str:
    """Run the edit, check it with the independent judge, return the new main file."""
    root = make_root(tmp_path, main)
    before = mkinitcpio_reads(root / "etc/mkinitcpio.conf")
    result = ensure(root, with_net=with_net)
    after = mkinitcpio_reads(root / "etc/mkinitcpio.conf")
    assert after.hooks == list(result.after)
    assert after.others == before.others
    assert_iscsi_placed(before.hooks, after.hooks, with_net=with_net)
    again = ensure(root, with_net=with_net)
    assert not again.changed and "nothing to change" in again.messages[-1]
    return (root / "etc/mkinitcpio.conf").read_text()


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        pytest.param(
            "HOOKS=(base udev autodetect block filesystems fsck)\n",
            "HOOKS=(base udev autodetect net iscsi block filesystems fsck)\n",
            id="single-line",
        ),
        pytest.param(
            "HOOKS=(base udev  block\tfilesystems)\n",
            "HOOKS=(base udev  net iscsi block\tfilesystems)\n",
            id="odd-spacing-kept",
        ),
        pytest.param(
            "HOOKS=(\n\tbase\n\tudev\n\tblock\n\tfilesystems\n)\n",
            "HOOKS=(\n\tbase\n\tudev\n\tnet\n\tiscsi\n\tblock\n\tfilesystems\n)\n",
            id="one-per-line-tabs",
        ),
        pytest.param(
            "HOOKS=(\n    base # busybox\n    udev\n    filesystems # ext4\n)\n",
            "HOOKS=(\n    base # busybox\n    udev\n    net\n    iscsi\n"
            "    filesystems # ext4\n)\n",
            id="one-per-line-comments",
        ),
        pytest.param(
            "HOOKS=(\n  base\n  udev # last\n)\n",
            "HOOKS=(\n  base\n  udev # last\n  net\n  iscsi\n)\n",
            id="append-after-trailing-comment",
        ),
        pytest.param(
            "HOOKS=(base udev\n       autodetect block)\n",
            "HOOKS=(base udev\n       autodetect net iscsi block)\n",
            id="wrapped-line",
        ),
        pytest.param(
            'HOOKS=("base" "udev" "block")\n',
            'HOOKS=("base" "udev" "net" "iscsi" "block")\n',
            id="double-quoted-items",
        ),
        pytest.param(
            "HOOKS=('base' 'udev' 'block')\n",
            "HOOKS=('base' 'udev' 'net' 'iscsi' 'block')\n",
            id="single-quoted-items",
        ),
        pytest.param(
            'HOOKS="base udev autodetect block filesystems"\n',
            'HOOKS="base udev autodetect net iscsi block filesystems"\n',
            id="legacy-string",
        ),
        pytest.param("HOOKS=base\n", 'HOOKS="base net iscsi"\n', id="legacy-bare-word"),
        pytest.param("HOOKS=(base udev)\n", "HOOKS=(base udev net iscsi)\n", id="no-consumer"),
        pytest.param("HOOKS=()\n", "HOOKS=(net iscsi)\n", id="empty"),
        pytest.param(
            "HOOKS=(base udev btrfs block filesystems)\n",
            "HOOKS=(base udev net iscsi btrfs block filesystems)\n",
            id="btrfs-before-block",
        ),
        pytest.param(
            "HOOKS=(base udev resume block)\n",
            "HOOKS=(base udev net iscsi resume block)\n",
            id="resume-before-block",
        ),
        pytest.param(
            "HOOKS=(autodetect modconf block filesystems)\n",
            "HOOKS=(autodetect modconf net iscsi block filesystems)\n",
            id="no-base",
        ),
        pytest.param(
            "# HOOKS=(base udev iscsi block)\nHOOKS=(base udev block) # mine\n#HOOKS=(a)\n",
            "# HOOKS=(base udev iscsi block)\n"
            "HOOKS=(base udev net iscsi block) # mine\n#HOOKS=(a)\n",
            id="commented-neighbours",
        ),
        pytest.param(
            "HOOKS=(base udev block)",
            "HOOKS=(base udev net iscsi block)",
            id="no-final-newline",
        ),
        pytest.param(
            "HOOKS=(base)\nHOOKS=(base udev block)\n",
            "HOOKS=(base)\nHOOKS=(base udev net iscsi block)\n",
            id="last-assignment-wins",
        ),
        pytest.param(
            "HOOKS=(base udev)\nHOOKS+=(block filesystems)\n",
            "HOOKS=(base udev)\nHOOKS+=(net iscsi block filesystems)\n",
            id="append-decides-position",
        ),
        pytest.param(
            "MODULES=(a) HOOKS=(base udev block) ; COMPRESSION=zstd\n",
            "MODULES=(a) HOOKS=(base udev net iscsi block) ; COMPRESSION=zstd\n",
            id="several-assignments-on-a-line",
        ),
    ],
)
def test_adds_net_and_iscsi_keeping_the_layout(tmp_path: Path, main: str, expected: str) -> None:
    assert edited(tmp_path, main) == expected


@pytest.mark.parametrize(
    ("main", "expected", "note"),
    [
        (
            "HOOKS=(base udev block filesystems iscsi)\n",
            "HOOKS=(base udev net iscsi block filesystems)\n",
            "moved 'iscsi' from after 'filesystems' to before 'block'",
        ),
        (
            "HOOKS=(iscsi base udev block)\n",
            "HOOKS=(base udev net iscsi block)\n",
            "moved 'iscsi' from at the start to before 'block'",
        ),
        (
            "HOOKS=(base udev block net iscsi)\n",
            "HOOKS=(base udev net iscsi block)\n",
            "moved 'net' from after 'block' to before 'iscsi'",
        ),
        (
            "HOOKS=(base udev iscsi block iscsi)\n",
            "HOOKS=(base udev net iscsi block)\n",
            "removed 1 duplicate 'iscsi'",
        ),
        (
            "HOOKS=(\n  base\n  udev\n  block\n  iscsi\n)\n",
            "HOOKS=(\n  base\n  udev\n  net\n  iscsi\n  block\n)\n",
            "moved 'iscsi' from after 'block' to before 'block'",
        ),
    ],
)
def test_misplaced_hooks_are_moved_and_the_move_is_shown(
    tmp_path: Path, main: str, expected: str, note: str
) -> None:
    root = make_root(tmp_path, main)
    result = ensure(root)
    assert note in result.messages
    assert (root / "etc/mkinitcpio.conf").read_text() == expected
    assert not ensure(root).changed


def test_right_place_is_left_alone(tmp_path: Path) -> None:
    main = "HOOKS=(base udev net autodetect modconf iscsi keyboard block)\n"
    root = make_root(tmp_path, main)
    before = snapshot(root)
    result = ensure(root)
    assert not result.changed and not result.written
    assert snapshot(root) == before  # not even a backup


def test_ibft_mode_adds_only_iscsi(tmp_path: Path) -> None:
    main = "HOOKS=(base udev block)\n"
    assert edited(tmp_path, main, with_net=False) == "HOOKS=(base udev iscsi block)\n"


def test_dropin_that_overrides_the_main_file_is_edited(tmp_path: Path) -> None:
    main = "HOOKS=(base udev block filesystems)\n"
    dropins = {
        "10-hooks.conf": "HOOKS=(base udev lvm2 filesystems)\n",
        "9-early.conf": "HOOKS=(early)\n",  # 9 sorts before 10 with sort -V
        "99-not-a-dropin.conf.bak": "HOOKS=(ignored)\n",
    }
    root = make_root(tmp_path, main, dropins)
    result = ensure(root)
    d = root / "etc/mkinitcpio.conf.d"
    assert result.path == d / "10-hooks.conf"
    assert (d / "10-hooks.conf").read_text() == "HOOKS=(base udev net iscsi lvm2 filesystems)\n"
    assert (root / "etc/mkinitcpio.conf").read_text() == main
    assert (d / "9-early.conf").read_text() == "HOOKS=(early)\n"
    assert mkinitcpio_reads(root / "etc/mkinitcpio.conf").hooks == list(result.after)


def test_append_dropin_decides_when_it_holds_the_first_consumer(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev)\n", {"50-disk.conf": "HOOKS+=(block fsck)\n"})
    result = ensure(root)
    assert result.path == root / "etc/mkinitcpio.conf.d/50-disk.conf"
    assert result.path.read_text() == "HOOKS+=(net iscsi block fsck)\n"


def test_explicit_config_ignores_dropins(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\n", {"10.conf": "HOOKS=(base lvm2)\n"})
    main = root / "etc/mkinitcpio.conf"
    result = conf_edit.ensure_iscsi_hooks(root=root, config=main, with_net=False, dry_run=False)
    assert result.path == main
    assert main.read_text() == "HOOKS=(base udev iscsi block)\n"
    assert mkinitcpio_reads(main, explicit=True).hooks == ["base", "udev", "iscsi", "block"]


def test_dry_run_writes_nothing_and_shows_a_diff(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\n")
    before = snapshot(root)
    result = ensure(root, dry_run=True)
    assert result.changed and not result.written
    assert "-HOOKS=(base udev block)\n+HOOKS=(base udev net iscsi block)\n" in result.diff
    assert snapshot(root) == before


def test_remove(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(\n  base\n  net\n  iscsi\n  block\n)\n")
    result = conf_edit.remove_hooks(root=root, config=None, names=["iscsi", "net"], dry_run=False)
    assert result.messages[:2] == ("removed 'iscsi'", "removed 'net'")
    assert (root / "etc/mkinitcpio.conf").read_text() == "HOOKS=(\n  base\n  block\n)\n"


def test_remove_refuses_to_empty_hooks(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(iscsi)\n")
    with pytest.raises(ConfEditError, match="empty"):
        conf_edit.remove_hooks(root=root, config=None, names=["iscsi"], dry_run=False)


def test_other_variables_and_bytes_around_are_kept(tmp_path: Path) -> None:
    main = (
        "# my config\nMODULES=(ext4)\nBINARIES=()\nFILES=(/etc/x)\n"
        'HOOKS=(base udev block)\nCOMPRESSION="zstd"\nCOMPRESSION_OPTIONS=(-19)\n'
    )
    new = edited(tmp_path, main)
    assert new == main.replace("udev block", "udev net iscsi block")


@pytest.mark.parametrize(
    ("main", "reason"),
    [
        ("HOOKS=(base $(echo udev) block)\n", "bash expands"),
        ("HOOKS=(base `echo udev` block)\n", "bash expands"),
        ("HOOKS=(base ${EXTRA} block)\n", "bash expands"),
        ("HOOKS=(base udev* block)\n", "bash expands"),
        ('HOOKS="base $EXTRA block"\n', "bash expands"),
        ("HOOKS=(@MKINITCPIO_HOOKS@)\n", "placeholder '@MKINITCPIO_HOOKS@'"),
        ("HOOKS=(base ... block)\n", "'...'"),
        ("if true; then\n  HOOKS=(base udev block)\nfi\n", "inside an if"),
        ("[ -e /x ] && HOOKS=(base udev block)\ntrue\n", "&&"),
        ("[ -e /x ] && HOOKS=(base udev block)\n", "last command failed with status 1"),
        ("HOOKS=(base udev block)\nHOOKS[3]=fsck\n", "HOOKS is used"),
        ('HOOKS=(base udev block)\nHOOKS=("${HOOKS[@]}" fsck)\n', "bash expands"),
        ("declare -a HOOKS=(base udev block)\n", "HOOKS is used"),
        ("HOOKS=(base udev block)\nunset HOOKS\nHOOKS=(base)\nMODULES=$HOOKS\n", "HOOKS is used"),
        ('HOOKS=(base udev block)\nHOOKS="x y"\n', "replaces only its first element"),
        ('HOOKS="base udev"\nHOOKS+=(block)\n', "legacy string"),
        ('HOOKS="base\nudev block"\n', "several lines"),
        ("HOOKS=(base udev systemd block)\n", "systemd-based"),
        ("HOOKS=(block base udev)\n", "cannot place 'iscsi'"),
        ("HOOKS=(base udev block\n", "bash cannot source"),
        ("HOOKS=(base udev block)\nfalse\n", "bash cannot source"),
        ("HOOKS=(base udev block)\nexit 0\n", "ends the shell"),
        ("eval 'HOOKS=(base udev fsck)'\nHOOKS=(base udev block)\n", "HOOKS is used"),
        ('H=HOO; declare -a "${H}KS=(base udev)"\nHOOKS+=(block)\n', "bash reads HOOKS"),
        ("HOOKS=(base udev block)C=1\n", "bash reads HOOKS"),
    ],
)
def test_refuses_cleanly(tmp_path: Path, main: str, reason: str) -> None:
    root = make_root(tmp_path, main)
    before = snapshot(root)
    with pytest.raises(ConfEditError) as e:
        ensure(root)
    assert reason in str(e.value)
    assert "nothing was written" in str(e.value) or "systemd" in str(e.value)
    assert isinstance(e.value, InputError)
    assert snapshot(root) == before


def test_eval_that_changes_hooks_afterwards_is_caught(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\neval 'HOOKS+=(fsck)'\n")
    with pytest.raises(ConfEditError, match=r"HOOKS is used|bash reads HOOKS"):
        ensure(root)


def test_systemd_refusal_says_what_to_do(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base systemd autodetect block filesystems)\n")
    with pytest.raises(ConfEditError) as e:
        ensure(root)
    message = str(e.value)
    assert "systemd-based" in message and "no busybox runtime hook runs" in message
    assert "by hand after 'systemd' and before 'block'" in message
    assert "'udev' for 'systemd'" in message and "nothing was written" in message


def test_no_edit_on_a_systemd_image_says_what_to_do_by_hand(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base systemd autodetect block filesystems)\n")
    text = conf_edit.describe_manual_change(root=root, config=None, with_net=True)
    assert text.startswith("Not editing: ") and "after 'systemd'" in text
    assert "'net'" not in text


def test_a_change_spanning_two_files_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\n", {"50.conf": "HOOKS+=(iscsi)\n"})
    before = snapshot(root)
    with pytest.raises(ConfEditError, match="one file at a time"):
        ensure(root, with_net=False)
    assert snapshot(root) == before


def test_missing_final_newline_joining_files_is_explained(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)", {"10.conf": "COMPRESSION=zstd\n"})
    with pytest.raises(ConfEditError, match="has no final newline"):
        ensure(root)


def test_comment_without_newline_swallows_the_dropins_first_line(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block) # mine", {"10.conf": "HOOKS+=(x)\n"})
    result = ensure(root)
    assert result.after == ("base", "udev", "net", "iscsi", "block")  # as mkinitcpio reads it
    assert any("no final newline" in m for m in result.messages)


def test_preset_with_its_own_config_is_pointed_out(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\n")
    (root / "etc/mkinitcpio.d").mkdir()
    (root / "etc/mkinitcpio.d/linux.preset").write_text(
        '#ALL_config="/etc/mkinitcpio.conf"\nfallback_config="/etc/mkinitcpio-fb.conf"\n'
    )
    result = ensure(root)
    notes = [m for m in result.messages if m.startswith("note:")]
    assert len(notes) == 1 and "fallback_config" in notes[0]


def test_check_order(tmp_path: Path) -> None:
    def check(main: str, names: list[str]) -> list[str]:
        (tmp_path / "etc").mkdir(exist_ok=True)
        (tmp_path / "etc/mkinitcpio.conf").write_text(main)
        return conf_edit.check_order(conf_edit.load(root=tmp_path, config=None), names)

    assert check("HOOKS=(base udev iscsi block)\n", ["iscsi"]) == []
    assert check("HOOKS=(base udev block)\n", ["iscsi"]) == ["'iscsi' is missing"]
    assert check("HOOKS=(base udev block iscsi)\n", ["iscsi"]) == [
        "'iscsi' comes after 'block' but must come before it"
    ]
    assert check("HOOKS=(base iscsi udev block)\n", ["iscsi"]) == [
        "'iscsi' comes before 'udev' but must come after it"
    ]
    assert check("HOOKS=(base udev iscsi net block)\n", ["net", "iscsi"]) == [
        "'net' comes after 'iscsi' but must come before it"
    ]
    assert check("HOOKS=(base udev iscsi iscsi block)\n", ["iscsi"]) == ["'iscsi' appears 2 times"]
    # check needs only bash's answer, not an editable statement
    assert check("X=block\nHOOKS=(base udev iscsi $X)\n", ["iscsi"]) == []


def test_unknown_hook_for_add_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\n")
    with pytest.raises(ConfEditError, match="no ordering rule for hook 'lvm2'"):
        conf_edit.add_hooks(root=root, config=None, names=["lvm2"], dry_run=False)


def test_missing_config_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ConfEditError, match="no such file"):
        ensure(tmp_path)


def test_describe_manual_change(tmp_path: Path) -> None:
    root = make_root(tmp_path, "HOOKS=(base udev block)\n")
    before = snapshot(root)
    text = conf_edit.describe_manual_change(root=root, config=None, with_net=True)
    assert "Make HOOKS read (base udev net iscsi block)" in text
    assert "+HOOKS=(base udev net iscsi block)" in text
    assert snapshot(root) == before
    ensure(root)
    text = conf_edit.describe_manual_change(root=root, config=None, with_net=True)
    assert "already right" in text


def test_describe_manual_change_when_the_editor_cannot(tmp_path: Path) -> None:
    root = make_root(tmp_path, "X=block\nHOOKS=(base udev $X)\n")
    text = conf_edit.describe_manual_change(root=root, config=None, with_net=False)
    assert "Put 'iscsi' into HOOKS by hand" in text and "before the first of" in text


def test_ordering_table_covers_the_documented_consumers() -> None:
    (iscsi, net) = conf_edit.ORDERING[conf_edit.ImageKind.BUSYBOX]
    assert iscsi.hook == "iscsi" and net.hook == "net"
    documented = {"block", "encrypt", "plymouth-encrypt", "lvm2", "mdadm_udev", "resume"}
    documented |= {"zfs", "btrfs", "filesystems", "fsck", "usr"}
    assert documented <= iscsi.before and {"base", "udev"} == iscsi.after
    assert "iscsi" in net.before and conf_edit.ImageKind.SYSTEMD not in conf_edit.ORDERING


def test_evaluation_has_no_network(tmp_path: Path) -> None:
    """A configuration that reaches out gets no connection from the editor's bash."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        main = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo hello >&3\nHOOKS=(base udev block)\n"
        root = make_root(tmp_path, main)
        ensure(root)  # the failed connection is not the last command: sourcing goes on
        with pytest.raises(TimeoutError):
            server.accept()
