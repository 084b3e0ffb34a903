"""Run generated hooks the way mkinitcpio would, with recording stand-ins.

The runtime hook runs under Debian's busybox ash, as in the initramfs, inside a
private mount and PID namespace: /sys, /dev, /etc and /tmp are the test's own
directories, so the hook sees the sysfs, device nodes and command line the
test sets up, and the fakes (iscsistart, modprobe, ip) record what it asked of
them. The build hook is sourced by real bash with stand-ins for mkinitcpio's
helpers that record each call.
"""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).parent
BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
# Not timeout: the hook must bound its attempts without it.
APPLETS = (
    "ash",
    "sh",
    "sleep",
    "cat",
    "grep",
    "sed",
    "tail",
    "kill",
    "mkdir",
    "mknod",
    "printf",
    "echo",
    "ls",
    "rm",
    "touch",
)


@dataclass(frozen=True)
class HookRun:
    status: int
    stdout: str
    stderr: str
    iscsistart: list[list[str]]  # argv of each call, in order
    modprobe: list[str]  # arguments of each call, joined by spaces
    ip: list[str]  # arguments of each ip call that changes something
    udhcpc: list[str]  # arguments of each udhcpc call
    leftovers: int  # iscsistart processes still alive when the hook returned
    seconds: float
    out: dict[str, str]  # files the hook wrote under /tmp/out

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cmdline_cache(words: Sequence[str]) -> str:
    """What mkinitcpio's init writes to /tmp/cmdline for these command-line words."""
    lines = []
    for word in words:
        key, equals, value = word.partition("=")
        if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
            value = value[1:-1]
        lines.append(f"{key}={value if equals and value else 'y'}\n")
    return "".join(lines)


# Runs as PID 1 of a new PID namespace, in a new mount namespace. $2 is the
# shell code to run after sourcing the stand-ins (if any) and the hook.
_SANDBOX_SCRIPT = r"""
set -e
sb="$1"
mount --bind "$sb/sys" /sys
mount --bind "$sb/etc" /etc
mount --bind "$sb/tmp" /tmp
mount --bind "$sb/proc-cmdline" /proc/cmdline
mount -t tmpfs -o mode=755 fakedev /dev
mknod -m 666 /dev/null c 1 3
cd /
exec env -i PATH="$sb/bin" "$sb/bin/ash" -c '
    [ -f "$0" ] && . "$0"
    . "$1"
    eval "$2"
    status=$?
    left=0
    for comm in /proc/[0-9]*/comm; do
        read -r name <"$comm" 2>/dev/null || continue
        [ "$name" = iscsistart ] && left=$((left + 1))
    done
    echo "$left" >/tmp/fake/leftovers
    exit "$status"
' "$sb/stubs.sh" "$sb/hook" "$2"
"""


def run_runtime_hook(
    hook: Path,
    cmdline: Sequence[str] = (),
    *,
    network: bool = True,
    ibft: bool = False,
    fail_times: int = 0,
    status: int = 1,
    hang: bool = False,
    child: bool = False,
    no_disk: bool = False,
    files: Mapping[str, str] = {},
    without: Sequence[str] = (),
    no_dhcp: bool = False,
    systemd: bool = False,
    entry: str = "",
    timeout: float = 60,
) -> HookRun:
    """Run `hook`'s run_hook; `files` maps absolute paths under /etc or /sys to contents.

    `without` names commands the image lacks (applets or fakes). With `systemd`,
    the hook runs as iscsi-hookgen-login.service runs it: iscsi_systemd_main,
    no mkinitcpio stand-ins, the command line in /proc/cmdline. `entry` runs
    other shell code instead; it may write files to /tmp/out.
    """
    sandbox = Path(tempfile.mkdtemp(prefix="iscsi-hook-", dir="/var/tmp"))
    try:
        for name in ("sys", "etc/fake", "tmp/fake", "bin"):
            (sandbox / name).mkdir(parents=True)
        for applet in APPLETS:
            if applet not in without:
                (sandbox / "bin" / applet).symlink_to(BUSYBOX)
        (sandbox / "bin/systemd-escape").symlink_to(shutil.which("systemd-escape") or "/bin/false")
        for fake in ("iscsistart", "modprobe", "ip", "udhcpc"):
            if fake in without:
                continue
            shutil.copy(TESTS / f"fake_{fake}", sandbox / "bin" / fake)
            (sandbox / "bin" / fake).chmod(0o755)
        if not systemd:
            shutil.copy(TESTS / "initcpio_stubs.sh", sandbox / "stubs.sh")
            (sandbox / "tmp/cmdline").write_text(cmdline_cache(cmdline))
        shutil.copy(hook, sandbox / "hook")
        (sandbox / "proc-cmdline").write_text(" ".join(cmdline) + "\n")
        (sandbox / "tmp/out").mkdir()
        entry = entry or ("iscsi_systemd_main" if systemd else "run_hook")

        control = sandbox / "etc/fake"
        for flag, wanted in (
            ("network", network),
            ("ibft", ibft),
            ("hang", hang),
            ("child", child),
            ("no_disk", no_disk),
            ("no_dhcp", no_dhcp),
        ):
            if wanted:
                (control / flag).touch()
        (control / "fail_times").write_text(str(fail_times))
        (control / "status").write_text(str(status))
        for path, content in files.items():
            top, _, rest = path.lstrip("/").partition("/")
            assert top in ("etc", "sys"), path
            target = sandbox / top / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)

        started = time.monotonic()
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "bash",
                "-c",
                _SANDBOX_SCRIPT,
                "sandbox",
                str(sandbox),
                entry,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - started

        log = sandbox / "tmp/fake"
        count = int((log / "count").read_text()) if (log / "count").exists() else 0
        calls = [(log / f"iscsistart.{n}").read_text().splitlines() for n in range(1, count + 1)]

        def lines(name: str) -> list[str]:
            return (log / name).read_text().splitlines() if (log / name).exists() else []

        out = sandbox / "tmp/out"
        leftovers_file = log / "leftovers"
        if not leftovers_file.exists():
            raise AssertionError(f"the sandbox did not run the hook:\n{done.stderr}")
        return HookRun(
            status=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            iscsistart=calls,
            modprobe=lines("modprobe"),
            ip=lines("ip"),
            udhcpc=lines("udhcpc"),
            leftovers=int(leftovers_file.read_text()),
            seconds=seconds,
            out={
                p.relative_to(out).as_posix(): p.read_text()
                for p in sorted(out.rglob("*"))
                if p.is_file()
            },
        )
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


# Stand-ins for mkinitcpio's build helpers: each call is one line of the log,
# the function name then its arguments, separated by tabs.
_BUILD_STUBS = r"""
log() { local IFS=$'\t'; printf '%s\n' "$*" >>"$CALLS"; }
map() { local r=0 a; for a in "${@:2}"; do "$1" "$a" || r=1; done; return "$r"; }
add_module() { log add_module "$@"; }
add_checked_modules() { log add_checked_modules "$@"; }
add_all_modules() { log add_all_modules "$@"; }
add_binary() { log add_binary "$@"; }
add_file() {
    log add_file "$@"
    # add_file - DEST MODE: the content comes on stdin; keep it for the test.
    if [[ $1 == - ]]; then mkdir -p "$FILES${2%/*}" && cat >"$FILES$2"; fi
}
add_dir() { log add_dir "$@"; }
add_symlink() { log add_symlink "$@"; }
add_runscript() { log add_runscript "${BASH_SOURCE[1]##*/}"; }
warning() { log warning "$@"; }
error() { log error "$@"; }
"""


@dataclass(frozen=True)
class BuildRun:
    status: int
    calls: list[list[str]]
    stdout: str
    stderr: str
    files: dict[str, str]  # what add_file - wrote, by destination in the image


def run_build_hook(hook_dir: Path, *, systemd: bool = False, function: str = "build") -> BuildRun:
    """Source HOOK_DIR/install/iscsi in real bash, as mkinitcpio does, and call `function`.

    `systemd` defines add_systemd_unit, as mkinitcpio does once the systemd
    hook has run.
    """
    with tempfile.TemporaryDirectory() as scratch:
        calls_file = Path(scratch) / "calls"
        calls_file.touch()
        files = Path(scratch) / "files"
        files.mkdir()
        script = _BUILD_STUBS
        if systemd:
            script += 'add_systemd_unit() { log add_systemd_unit "$@"; }\n'
        script += f'. "$1" && {function}\n'
        done = subprocess.run(
            [
                "bash",
                "--norc",
                "--noprofile",
                "-c",
                script,
                "bash",
                str(hook_dir / "install" / "iscsi"),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ["PATH"], "CALLS": str(calls_file), "FILES": str(files)},
        )
        calls = [line.split("\t") for line in calls_file.read_text().splitlines()]
        written = {
            "/" + p.relative_to(files).as_posix(): p.read_text()
            for p in sorted(files.rglob("*"))
            if p.is_file()
        }
    return BuildRun(done.returncode, calls, done.stdout, done.stderr, written)
