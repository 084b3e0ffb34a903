"""Property tests: generated configurations in every layout the field shows.

Each example is a main file and up to two drop-ins with random hook lists and
formatting: arrays on one line or one item per line, comments inside and
around, quoted items, tabs and odd spacing, legacy strings, commented-out HOOKS
lines next to the real one, overridden assignments, HOOKS+= drop-ins and files
without a final newline. Whatever the editor does is judged by the independent
oracle: either the right effective HOOKS with every byte outside the edited
statement kept and a second run changing nothing, or a refusal that is right
for that configuration, with nothing written.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hooks_oracle import NEEDS_ROOT_DISK, assert_iscsi_placed, changed_span, mkinitcpio_reads
from iscsi_hookgen import conf_edit
from iscsi_hookgen.conf_edit import ConfEditError

POOL = [
    "autodetect", "microcode", "modconf", "kms", "keyboard", "keymap", "consolefont", "block",
    "encrypt", "lvm2", "mdadm_udev", "resume", "btrfs", "filesystems", "fsck", "usr",
    "plymouth", "shutdown", "my-hook", "net", "iscsi", "base", "udev",
]  # fmt: skip
RARE = ["systemd", "sd-vconsole"]

# Refusals that are right for some generated configurations whatever the hooks:
# a move across two files, a legacy string mixed with arrays, files joined by a
# missing final newline.
STRUCTURAL = ("one file at a time", "whole string", "legacy string", "no final newline")


@dataclass
class File:
    text: str = ""
    spans: list[tuple[int, int]] = field(default_factory=list)  # HOOKS statements

    def add(self, chunk: str, *, statement: bool = False) -> None:
        if statement:
            self.spans.append((len(self.text), len(self.text) + len(chunk)))
        self.text += chunk


# Mostly base/udev first as in the field, then anything, with a systemd hook
# in about one list in ten.
hook_lists = st.tuples(
    st.sampled_from([[], ["base"], ["base", "udev"], ["udev"]]),
    st.lists(st.sampled_from(POOL), max_size=9),
    st.lists(st.sampled_from(RARE), max_size=1),
    st.integers(0, 9),
).map(lambda t: t[0] + t[1] + (t[2] if t[3] == 0 else []))


@st.composite
def statement(draw: st.DrawFn, hooks: list[str], *, append: bool = False) -> str:
    op = "+=" if append else "="
    if not append and draw(st.integers(0, 4)) == 0:  # legacy string
        q = draw(st.sampled_from(['"', "'"]))
        lead = draw(st.sampled_from(["", " "]))
        body = lead + "".join(h + draw(st.sampled_from([" ", "  "])) for h in hooks)
        if draw(st.booleans()):
            body = body.rstrip(" ")
        return f"HOOKS{op}{q}{body}{q}"
    words = [draw(st.sampled_from(["{}", "'{}'", '"{}"', "{}", "{}"])).format(h) for h in hooks]
    layout = draw(st.sampled_from(["inline", "vertical", "wrapped"]))
    if layout == "inline":
        seps = [draw(st.sampled_from([" ", " ", "  ", "\t", " \t"])) for _ in words]
        inner = "".join(w + s for w, s in zip(words, seps, strict=True)).rstrip(" \t")
        pad = draw(st.sampled_from(["", " "]))
        return f"HOOKS{op}({pad}{inner}{pad})"
    indent = draw(st.sampled_from(["\t", "  ", "    "]))
    if layout == "vertical":
        lines = []
        for w in words:
            if draw(st.integers(0, 5)) == 0:
                lines.append(f"{indent}# about {w.strip(chr(39) + chr(34))}")
            comment = draw(st.sampled_from(["", "", "", " # why"]))
            lines.append(f"{indent}{w}{comment}")
        close = draw(st.sampled_from(["\n)", "\n)", ")"]))
        if close == ")" and lines and "#" in lines[-1]:
            close = "\n)"
        return f"HOOKS{op}(\n" + "\n".join(lines) + close
    cut = draw(st.integers(1, 3))
    chunks = [" ".join(words[i : i + cut]) for i in range(0, len(words), cut)]
    return f"HOOKS{op}(" + f"\n{indent}".join(chunks) + ")"


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, File]:
    main = File()
    if draw(st.booleans()):
        main.add("# mkinitcpio configuration\n#\n")
    main.add(draw(st.sampled_from(["", "MODULES=(ext4)\n", 'MODULES="a b"\n', "BINARIES=()\n"])))
    if draw(st.booleans()):
        main.add(f"#HOOKS=({' '.join(draw(hook_lists))})\n")
    if draw(st.integers(0, 3)) == 0:  # an earlier assignment, overridden
        main.add(draw(statement(draw(hook_lists))), statement=True)
        main.add("\n")
    main.add(draw(statement(draw(hook_lists))), statement=True)
    main.add(draw(st.sampled_from(["", "", " # mine", "\t# mine"])) + "\n")
    if draw(st.booleans()):
        main.add(f"# HOOKS=({' '.join(draw(hook_lists))})\n")
    main.add(draw(st.sampled_from(["", 'COMPRESSION="zstd"\n', "COMPRESSION_OPTIONS=(-9)\n"])))
    files = {"main": main}
    for name in draw(
        st.lists(st.sampled_from(["10-a.conf", "9-b.conf", "50-c.conf"]), max_size=2, unique=True)
    ):
        d = File()
        kind = draw(st.sampled_from(["append", "append", "reset", "other"]))
        if kind == "other":
            d.add('COMPRESSION="xz"\n')
        else:
            d.add(draw(statement(draw(hook_lists), append=kind == "append")), statement=True)
            d.add("\n")
        files[name] = d
    for f in files.values():
        if draw(st.integers(0, 7)) == 0:
            f.text = f.text.rstrip("\n")
    return files


def _write(root: Path, files: dict[str, File]) -> dict[str, Path]:
    (root / "etc/mkinitcpio.conf.d").mkdir(parents=True)
    paths = {}
    for name, f in files.items():
        path = (
            root / "etc/mkinitcpio.conf"
            if name == "main"
            else root / "etc/mkinitcpio.conf.d" / name
        )
        path.write_bytes(f.text.encode())
        paths[name] = path
    return paths


def _must_refuse(hooks: list[str], ok: bool) -> str | None:
    """The refusal the oracle demands, if any."""
    if not ok:
        return ""
    if any(not conf_edit.valid_hook_name(h) for h in hooks):
        return ""
    if "systemd" in hooks:
        return "systemd"
    rest = [h for h in hooks if h not in ("net", "iscsi")]
    first = next((i for i, h in enumerate(rest) if h in NEEDS_ROOT_DISK), len(rest))
    if any(h in ("base", "udev") for h in rest[first:]):
        return "cannot place"
    return None


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=configurations(), with_net=st.booleans())
def test_edit_is_right_or_refusal_is_right(files: dict[str, File], with_net: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _write(root, files)
        main = paths["main"]
        before = mkinitcpio_reads(main)
        old = {n: p.read_bytes() for n, p in paths.items()}
        demanded = _must_refuse(before.hooks, before.ok)
        try:
            result = conf_edit.ensure_iscsi_hooks(
                root=root, config=None, with_net=with_net, dry_run=False
            )
        except ConfEditError as e:
            message = str(e)
            event(f"refused: {demanded or next((s for s in STRUCTURAL if s in message), '?')}")
            assert "\n" not in message
            structural = any(s in message for s in STRUCTURAL)
            assert structural or (demanded is not None and demanded in message), message
            assert {n: p.read_bytes() for n, p in paths.items()} == old
            assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(
                p.name for p in paths.values()
            )
            return
        assert demanded is None, (demanded, before.hooks)
        event("edited" if result.changed else "already right")
        after = mkinitcpio_reads(main)
        assert after.ok and after.hooks == list(result.after)
        assert after.others == before.others
        assert_iscsi_placed(before.hooks, after.hooks, with_net=with_net)
        changed = [n for n, p in paths.items() if p.read_bytes() != old[n]]
        assert len(changed) <= 1
        if changed:
            (name,) = changed
            assert paths[name] == result.path
            p, q = changed_span(old[name], paths[name].read_bytes())
            assert any(s <= p and q <= e for s, e in files[name].spans), (p, q)
        else:
            assert not result.changed
        snapshot = {n: p.read_bytes() for n, p in paths.items()}
        again = conf_edit.ensure_iscsi_hooks(
            root=root, config=None, with_net=with_net, dry_run=False
        )
        assert not again.changed
        assert {n: p.read_bytes() for n, p in paths.items()} == snapshot


@settings(max_examples=100, deadline=None)
@given(files=configurations())
def test_remove_after_add_restores_the_hooks(files: dict[str, File]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _write(root, files)
        before = mkinitcpio_reads(paths["main"])
        try:
            conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=True, dry_run=False)
            conf_edit.remove_hooks(root=root, config=None, names=["iscsi", "net"], dry_run=False)
        except ConfEditError:
            return  # judged by the test above
        after = mkinitcpio_reads(paths["main"])
        assert after.hooks == [h for h in before.hooks if h not in ("iscsi", "net")]
        assert after.others == before.others


SHELL_BITS = [
    "HOOKS=(", "HOOKS+=(", "HOOKS=", '"', "'", ")", "(", " ", "\t", "\n", "#", "base", "udev",
    "block", "iscsi", "net", "$(", "`", "${", "}", "{", ";", "&&", "|", "\\", "<<EOF\n",
    "EOF\n", "if ", "then ", "fi", "case x in ", "esac", "=", "[", "]", "*", "$x", "@X@", "...",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.sampled_from(SHELL_BITS), max_size=25))
def test_any_shell_text_is_edited_right_or_refused(parts: list[str]) -> None:
    """Fragments of shell syntax in any order: never a crash, a wrong edit or a stray write."""
    text = "".join(parts)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _write(root, {"main": File(text)})
        before = mkinitcpio_reads(paths["main"])
        try:
            result = conf_edit.ensure_iscsi_hooks(
                root=root, config=None, with_net=True, dry_run=False
            )
        except ConfEditError:
            event("refused")
            assert paths["main"].read_text() == text
            return
        event("edited" if result.changed else "already right")
        after = mkinitcpio_reads(paths["main"])
        assert after.ok and after.hooks == list(result.after)
        assert after.others == before.others
        assert_iscsi_placed(before.hooks, after.hooks, with_net=True)
