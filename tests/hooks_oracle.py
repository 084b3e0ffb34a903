"""An independent judge for the HOOKS editor's tests: what would mkinitcpio read?

It does not use iscsi_hookgen at all: bash, find and sort gather and source the
configuration the way mkinitcpio v41 does, and the result is checked against
the ordering facts written out here again in the tests' own words.
"""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Gather the files like mkinitcpio (main file, then *.conf drop-ins that are
# files or links to files, names in `sort -V` order, unless -c was given),
# source them as one with extglob on, then split a legacy string like
# mkinitcpio's arrayize_config.
_SCRIPT = r"""
main=$1 explicit=$2
cfg=$main
if [[ -d "$main.d" && $explicit == 0 ]]; then
    mapfile -d '' names < <(LC_ALL=C.UTF-8 find "$main.d" -maxdepth 1 -xtype f -name '*.conf' \
        -print0 | sed -z 's/.*\///' | LC_ALL=C.UTF-8 sort -zVu)
    if (( ${#names[@]} )); then
        cfg=$(mktemp)
        cat -- "$main" >"$cfg"
        for n in "${names[@]}"; do cat -- "$main.d/$n" >>"$cfg"; done
    fi
fi
exec 3>&1 1>&2
run() {
    shopt -s extglob
    . "$1" || exit 99
    unset -v main explicit cfg names n
    declare -p >"$2"
    declare -f >>"$2"
    set -f
    [[ ${HOOKS@a} == *a* ]] || IFS=' ' read -r -a HOOKS <<<"$HOOKS"
    (( ${#HOOKS[@]} )) && printf 'H:%s\n' "${HOOKS[@]}" >&3
    true
}
state=$(mktemp)
(run "$cfg" "$state")
rc=$?
volatile='HOOKS|BASH[A-Z_]*|FUNCNAME|PPID|PWD|OLDPWD|SHLVL|_|RANDOM|SRANDOM|SECONDS'
volatile+='|EPOCH[A-Z]*|LINENO|HISTCMD|state|rc'
grep -v -E "^declare -[-a-zA-Z]* ($volatile)(=|\$)" "$state" | sed 's/^/V:/' >&3
printf 'rc=%d\n' "$rc" >&3
"""


@dataclass(frozen=True)
class Seen:
    hooks: list[str]
    others: str  # every other variable and function, for comparison
    ok: bool  # bash sourced it without error


def mkinitcpio_reads(main: Path, *, explicit: bool = False) -> Seen:
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", _SCRIPT, "bash", str(main), str(int(explicit))],
        env={"PATH": os.defpath},
        capture_output=True,
        check=True,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="latin-1",
    ).stdout
    lines = out.splitlines()
    hooks = [line[2:] for line in lines if line.startswith("H:")]
    others = "\n".join(line for line in lines if line.startswith("V:"))
    return Seen(hooks=hooks, others=others, ok=lines[-1] == "rc=0")


# The placement facts from the design notes, restated for checking.
NEEDS_ROOT_DISK = {
    "block", "encrypt", "plymouth-encrypt", "lvm2", "mdadm_udev", "resume", "zfs", "btrfs",
    "filesystems", "fsck", "usr",
}  # fmt: skip


def assert_iscsi_placed(before: list[str], after: list[str], *, with_net: bool) -> None:
    """`after` is `before` with iscsi (and net) put where the design says, nothing else moved."""
    ours = {"iscsi", "net"} if with_net else {"iscsi"}
    assert [h for h in after if h not in ours] == [h for h in before if h not in ours]
    assert after.count("iscsi") == 1
    i = after.index("iscsi")
    assert all(h not in NEEDS_ROOT_DISK for h in after[:i]), after
    assert all(h not in ("base", "udev") for h in after[i + 1 :]), after
    if with_net:
        assert after.count("net") == 1
        n = after.index("net")
        assert n < i and all(h not in ("base", "udev") for h in after[n + 1 :]), after
    # a hook that was right stays where it was; a new or moved one goes right
    # before the first hook that needs the disk
    if not _was_right(before):
        rest = after[i + 1 :]
        first = next((h for h in rest if h in NEEDS_ROOT_DISK), None)
        assert (rest[0] == first) if first else rest == [], after


def _was_right(hooks: list[str]) -> bool:
    """Some iscsi (duplicates aside) was already where it may stay."""
    for j, h in enumerate(hooks):
        if h == "iscsi":
            ahead = [x for x in hooks[:j] if x != "iscsi"]
            behind = [x for x in hooks[j + 1 :] if x != "iscsi"]
            if all(x not in NEEDS_ROOT_DISK for x in ahead) and all(
                x not in ("base", "udev") for x in behind
            ):
                return True
    return False


def changed_span(old: bytes, new: bytes) -> tuple[int, int]:
    """The region of `old` that differs from `new` (common prefix and suffix removed)."""
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return p, len(old) - s
