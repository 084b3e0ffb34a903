"""The root filesystem the guest boots into: a small ext4 image whose
/sbin/init reports what it sees and powers off."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# /sbin/init of the root image (busybox sh). It runs only if the initramfs
# mounted this filesystem from the iSCSI disk and switched to it. It prints one
# VMTEST-MARKER line with the per-boot token from the command line and facts
# read in the booted system, writes the token to /vmtest-written (the test
# reads it back from the LUN's backing file), and powers off.
ROOT_INIT = r"""#!/bin/sh
export PATH=/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
token=none
for word in $(cat /proc/cmdline); do
    case "$word" in vmtest.token=*) token="${word#*=}" ;; esac
done
read -r up idle </proc/uptime
rootdev="$(awk '$2 == "/" { dev = $1 } END { print dev }' /proc/mounts)"
sessions=0 recovery_tmo=none target=none initiator=none address=none
for s in /sys/class/iscsi_session/session*; do
    [ -d "$s" ] || continue
    sessions=$((sessions + 1))
    recovery_tmo="$(cat "$s/recovery_tmo")"
    target="$(cat "$s/targetname")"
    initiator="$(cat "$s/initiatorname" 2>/dev/null)"
done
for c in /sys/class/iscsi_connection/connection*; do
    [ -d "$c" ] && address="$(cat "$c/persistent_address"):$(cat "$c/persistent_port")"
done
disk="$(ls -d /sys/class/iscsi_session/session*/device/target*/*/block/* 2>/dev/null | head -n 1)"
written=no
if mount -o remount,rw /; then
    echo "$token" >/vmtest-written && sync && written=yes
    mount -o remount,ro /
fi
echo "VMTEST-MARKER token=$token uptime=$up root=$rootdev sessions=$sessions" \
    "recovery_tmo=$recovery_tmo target=$target initiator=$initiator" \
    "address=$address disk=${disk##*/} written=$written"
sync
poweroff -f
"""


def _libraries(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    return [Path(p) for p in re.findall(r"(/\S+) \(0x", out)]


def build_root_image(image: Path, size_mb: int = 32) -> Path:
    """Write an ext4 image with busybox (and its libraries) and ROOT_INIT."""
    tree = image.with_suffix(".tree")
    if tree.exists():
        shutil.rmtree(tree)
    for d in ("usr/bin", "usr/lib", "proc", "sys", "dev", "etc", "tmp", "run"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    for link, target in (
        ("bin", "usr/bin"),
        ("sbin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib"),
    ):
        (tree / link).symlink_to(target)
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    shutil.copy2(busybox, tree / "usr/bin/busybox")
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (tree / "usr/bin" / applet).symlink_to("busybox")
    for lib in _libraries(busybox):
        # /lib and /lib64 are symlinks to usr/lib in this tree
        rel = Path("usr/lib") / lib.relative_to(lib.parts[0] + lib.parts[1])
        if lib.parts[1] == "usr":
            rel = lib.relative_to("/")
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib.resolve(), tree / rel)
    init = tree / "usr/bin/vmtest-init"
    (tree / "usr/bin/init").unlink(missing_ok=True)
    init.write_text(ROOT_INIT)
    init.chmod(0o755)
    (tree / "usr/bin/init").symlink_to("vmtest-init")
    (tree / "etc/os-release").write_text('NAME="vmtest root"\nID=vmtest\n')
    image.unlink(missing_ok=True)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "vmroot", "-d", str(tree), str(image), f"{size_mb}M"],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(tree)
    return image


def read_written(image: Path) -> str:
    """The token the guest wrote to /vmtest-written, read from the image file."""
    out = subprocess.run(
        ["debugfs", "-R", "cat /vmtest-written", str(image)], capture_output=True, text=True
    )
    return out.stdout.strip()
