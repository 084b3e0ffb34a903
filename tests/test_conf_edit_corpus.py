"""Every real configuration in the corpus: edited right with nothing else touched, or refused.

The corpus files are public configurations (SOURCES.tsv says where each comes
from). Many carry mkinitcpio's stock comments, so they are not copied into this
project: they are read from the shared corpus that CI places beside the
checkout (../shared), and a missing corpus fails the tests rather than
shrinking them.
"""

import re
from pathlib import Path

import pytest

from hooks_oracle import assert_iscsi_placed, changed_span, mkinitcpio_reads
from iscsi_hookgen import conf_edit
from iscsi_hookgen.conf_edit import ConfEditError

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared/corpus/mkinitcpio-conf"


def corpus() -> dict[str, Path]:
    return {p.name: p for p in sorted(SHARED.glob("*.conf"))}


# What must happen to each file, by its number: "edit", or "systemd" (refused:
# the image is systemd-based). A new corpus file must be added here.
EXPECTED = {
    "003": "edit", "006": "edit", "009": "edit", "012": "edit", "015": "edit",
    "018": "systemd", "021": "systemd", "024": "edit", "027": "edit", "030": "systemd",
    "033": "edit", "036": "systemd", "039": "edit", "042": "systemd", "045": "edit",
    "048": "systemd", "051": "edit", "054": "systemd", "057": "edit", "060": "edit",
    "063": "systemd", "066": "edit", "069": "systemd", "072": "edit", "075": "systemd",
    "078": "edit",
}  # fmt: skip

# Files whose HOOKS is a legacy string: as a drop-in over a main file whose
# HOOKS is an array, bash puts the whole string into the array's first element
# and mkinitcpio would look for one hook named "base udev ...": refused.
LEGACY = {"003", "027", "033", "045", "054", "078"}

# Stock main files (our own words) for trying corpus files as drop-ins.
STOCK = {
    "busybox": "# stock busybox-based configuration\nMODULES=()\nBINARIES=()\nFILES=()\n"
    "HOOKS=(base udev autodetect microcode modconf kms keyboard keymap consolefont block "
    "filesystems fsck)\n",
    "systemd": "# stock systemd-based configuration (mkinitcpio v40+)\nMODULES=()\n"
    "HOOKS=(base systemd autodetect microcode modconf kms keyboard sd-vconsole block "
    "filesystems fsck)\n",
}

# Active HOOKS statements as a plain regex sees them in these files.
STATEMENT = re.compile(rb"^[ \t]*HOOKS\+?=(\([^)]*\)|\"[^\"]*\"|'[^']*'|[^\s;]*)", re.M)

# systemd hooks and their busybox counterparts, to try the editor on the
# layouts of the systemd-based files too.
TO_BUSYBOX = {
    rb"\bsystemd\b": b"udev",
    rb"\bsd-vconsole\b": b"keymap",
    rb"\bsd-encrypt\b": b"encrypt",
    rb"\bsd-plymouth\b": b"plymouth",
    rb"\bsd-lvm2\b": b"lvm2",
    rb"\bsd-shutdown\b": b"shutdown",
}

FILES = corpus()


def test_every_corpus_file_has_an_expectation() -> None:
    assert SHARED.is_dir(), f"the shared corpus is missing: {SHARED}"
    assert {name[:3] for name in FILES} == set(EXPECTED)


def test_legacy_list_is_right() -> None:
    legacy = re.compile(rb"^HOOKS=[\"']", re.M)
    found = {n[:3] for n, p in FILES.items() if legacy.search(p.read_bytes())}
    assert found == LEGACY & {n[:3] for n in FILES}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _check_edit(root: Path, edited_file: Path, *, with_net: bool) -> None:
    main = root / "etc/mkinitcpio.conf"
    old = edited_file.read_bytes()
    others_before = {k: v for k, v in _snapshot(root).items() if k != _rel(root, edited_file)}
    before = mkinitcpio_reads(main)
    result = conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=with_net, dry_run=False)
    assert result.path == edited_file and result.written
    after = mkinitcpio_reads(main)
    assert after.ok and after.hooks == list(result.after)
    assert_iscsi_placed(before.hooks, after.hooks, with_net=with_net)
    assert after.others == before.others  # MODULES, BINARIES, FILES, COMPRESSION...
    new = edited_file.read_bytes()
    p, q = changed_span(old, new)
    spans = [m.span() for m in STATEMENT.finditer(old)]
    assert any(s <= p and q <= e for s, e in spans), (p, q, spans)
    backup = edited_file.with_name(edited_file.name + conf_edit.BACKUP_SUFFIX)
    assert backup.read_bytes() == old
    snap = _snapshot(root)
    assert {k: v for k, v in snap.items() if k in others_before} == others_before
    again = conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=with_net, dry_run=False)
    assert not again.changed and edited_file.read_bytes() == new


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _check_refusal(root: Path, reason: str = "systemd-based") -> None:
    before = _snapshot(root)
    with pytest.raises(ConfEditError, match=reason):
        conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=True, dry_run=False)
    assert _snapshot(root) == before


@pytest.mark.parametrize("with_net", [True, False], ids=["portal", "ibft"])
@pytest.mark.parametrize("name", list(FILES))
def test_as_main_file(tmp_path: Path, name: str, with_net: bool) -> None:
    (tmp_path / "etc").mkdir()
    main = tmp_path / "etc/mkinitcpio.conf"
    main.write_bytes(FILES[name].read_bytes())
    if EXPECTED[name[:3]] == "edit":
        _check_edit(tmp_path, main, with_net=with_net)
    else:
        _check_refusal(tmp_path)


@pytest.mark.parametrize("stock", list(STOCK))
@pytest.mark.parametrize("name", list(FILES))
def test_as_dropin_over_a_stock_main_file(tmp_path: Path, name: str, stock: str) -> None:
    (tmp_path / "etc/mkinitcpio.conf.d").mkdir(parents=True)
    (tmp_path / "etc/mkinitcpio.conf").write_text(STOCK[stock])
    dropin = tmp_path / "etc/mkinitcpio.conf.d" / name
    dropin.write_bytes(FILES[name].read_bytes())
    if name[:3] in LEGACY:
        _check_refusal(tmp_path, "whole string")
    elif EXPECTED[name[:3]] == "edit":
        _check_edit(tmp_path, dropin, with_net=True)  # the drop-in decides, not the main file
    else:
        _check_refusal(tmp_path)


@pytest.mark.parametrize("name", [n for n in FILES if EXPECTED[n[:3]] == "systemd"])
def test_systemd_layouts_turned_busybox_are_edited(tmp_path: Path, name: str) -> None:
    data = FILES[name].read_bytes()
    for pattern, replacement in TO_BUSYBOX.items():
        data = re.sub(pattern, replacement, data)
    (tmp_path / "etc").mkdir()
    main = tmp_path / "etc/mkinitcpio.conf"
    main.write_bytes(data)
    _check_edit(tmp_path, main, with_net=True)


def test_show_names_the_deciding_dropin(tmp_path: Path) -> None:
    (tmp_path / "etc/mkinitcpio.conf.d").mkdir(parents=True)
    (tmp_path / "etc/mkinitcpio.conf").write_text(STOCK["systemd"])
    name = "066-daniel-wie-dropin-full-override.conf"
    (tmp_path / "etc/mkinitcpio.conf.d" / name).write_bytes(FILES[name].read_bytes())
    analysis = conf_edit.load(root=tmp_path, config=None)
    assert analysis.deciding_files() == (tmp_path / "etc/mkinitcpio.conf.d" / name,)
    assert analysis.hooks == tuple(mkinitcpio_reads(tmp_path / "etc/mkinitcpio.conf").hooks)
