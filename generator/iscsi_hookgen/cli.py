"""The iscsi-hookgen command: validate, render, write the hooks, say what comes next."""

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from iscsi_hookgen import __version__, hooks_cli
from iscsi_hookgen.atomic import atomic_write
from iscsi_hookgen.conf_edit import ImageKind
from iscsi_hookgen.config import (
    RESILIENT_PARAMS,
    Chap,
    HookConfig,
    InputError,
    Mode,
    Retry,
    parse_chap_user,
    parse_iscsi_name,
    parse_module,
    parse_number,
    parse_param,
    parse_portal,
    read_chap_secret,
    read_initiator_name,
)
from iscsi_hookgen.render import MARKER_PREFIX, RenderedFile, render

PROG = "iscsi-hookgen"


@dataclass(frozen=True)
class Option:
    """One command-line option: the flags and what argparse needs to know of them."""

    flags: tuple[str, ...]
    help: str
    group: str
    kwargs: dict[str, Any] = field(default_factory=dict)


# Every option of the main command, in the order --help shows them. The man
# page and the shell completions are generated from this table too.
OPTIONS: tuple[Option, ...] = (
    Option(
        ("--ibft",),
        "log in with the firmware's iBFT table (iscsistart -N, -b)",
        "mode",
        {"action": "store_true"},
    ),
    Option(
        ("--portal",),
        "static-portal mode: the target's IPv4 or IPv6 address, port "
        "3260 unless given ([IPV6]:PORT)",
        "mode",
        {"metavar": "ADDRESS[:PORT]"},
    ),
    Option(
        ("--generic",),
        "no baked values: the kernel command line says everything (the hook the package ships)",
        "mode",
        {"action": "store_true"},
    ),
    Option(
        ("--target",),
        "target name for --portal (iqn.YYYY-MM.domain:name, eui., naa.)",
        "static",
        {"metavar": "NAME"},
    ),
    Option(
        ("--initiator",),
        "initiator name for --portal (default: InitiatorName= in "
        "ROOT/etc/iscsi/initiatorname.iscsi)",
        "static",
        {"metavar": "NAME"},
    ),
    Option(
        ("--tpgt",),
        "target portal group tag for --portal (default 1)",
        "static",
        {"metavar": "N", "default": "1"},
    ),
    Option(
        ("-P", "--param"),
        "iscsistart -P setting, iscsid.conf style; repeatable",
        "login",
        {"metavar": "NAME=VALUE", "action": "append", "default": [], "dest": "params"},
    ),
    Option(
        ("--resilient",),
        "settings for a root disk: no-op pings off, replacement_timeout=86400",
        "login",
        {"action": "store_true"},
    ),
    Option(
        ("--chap-user",), "CHAP user name the initiator logs in with", "login", {"metavar": "NAME"}
    ),
    Option(
        ("--chap-secret-file",),
        "file holding the CHAP secret (never on the command line)",
        "login",
        {"metavar": "FILE", "type": Path},
    ),
    Option(
        ("--chap-in-user",),
        "mutual CHAP: user name the target answers with",
        "login",
        {"metavar": "NAME"},
    ),
    Option(
        ("--chap-in-secret-file",),
        "mutual CHAP: file holding the target's secret",
        "login",
        {"metavar": "FILE", "type": Path},
    ),
    Option(
        ("--retries",),
        f"login attempts before giving up (1-100, default {Retry.attempts})",
        "login",
        {"metavar": "N", "default": str(Retry.attempts)},
    ),
    Option(
        ("--retry-delay",),
        f"seconds between attempts (0-600, default {Retry.delay})",
        "login",
        {"metavar": "SECONDS", "default": str(Retry.delay)},
    ),
    Option(
        ("--attempt-timeout",),
        f"seconds one attempt may take (2-600, default {Retry.attempt_timeout})",
        "login",
        {"metavar": "SECONDS", "default": str(Retry.attempt_timeout)},
    ),
    Option(
        ("--nic-module",),
        "put only this NIC driver in the image (repeatable; default: "
        "all of drivers/net, or autodetect's)",
        "login",
        {"metavar": "NAME", "action": "append", "default": [], "dest": "nic_modules"},
    ),
    Option(
        ("--root",),
        "the system to set up, e.g. /mnt during installation (default /)",
        "output",
        {"metavar": "DIR", "type": Path, "default": Path("/")},
    ),
    Option(
        ("--output",),
        "write DIR/install/iscsi and DIR/hooks/iscsi instead of ROOT/etc/initcpio",
        "output",
        {"metavar": "DIR", "type": Path},
    ),
    Option(
        ("--dry-run",),
        "print what would be written; write nothing",
        "output",
        {"action": "store_true"},
    ),
    Option(
        ("--no-edit",),
        "leave HOOKS in mkinitcpio.conf alone; print the change to make instead",
        "output",
        {"action": "store_true"},
    ),
    Option(
        ("--force",),
        "overwrite hooks that iscsi-hookgen did not write",
        "output",
        {"action": "store_true"},
    ),
    Option(
        ("--version",),
        "print the version and exit",
        "output",
        {"action": "version", "version": f"{PROG} {__version__}"},
    ),
)

GROUPS = {
    "mode": "what to log in to (one of)",
    "static": "static-portal mode",
    "login": "login settings",
    "output": "where to write",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but bad input is one line on stderr and exit 2, as everywhere in this tool."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Generate mkinitcpio hooks that log in to an iSCSI target holding the "
        "root filesystem, and put them in place.",
        epilog="Examples: iscsi-hookgen --ibft; iscsi-hookgen --portal 192.0.2.10 --target "
        "iqn.2011-03.org.example:arch --resilient. HOOKS alone: iscsi-hookgen hooks "
        "show|add|remove|check (see iscsi-hookgen hooks --help).",
    )
    groups: dict[str, Any] = {}
    for name, title in GROUPS.items():
        group = parser.add_argument_group(title)
        groups[name] = group.add_mutually_exclusive_group() if name == "mode" else group
    for option in OPTIONS:
        groups[option.group].add_argument(*option.flags, help=option.help, **option.kwargs)
    return parser


def config_from_args(args: argparse.Namespace) -> tuple[HookConfig, list[str]]:
    """Validate every value; returns the configuration and warnings for stderr."""
    warnings: list[str] = []
    if args.ibft:
        mode = Mode.IBFT
    elif args.generic:
        mode = Mode.GENERIC
    elif args.portal is not None:
        mode = Mode.STATIC
    else:
        raise InputError(
            "say what to log in to: --ibft, --portal ADDRESS --target NAME, or --generic"
        )

    static_only = {"--target": args.target, "--initiator": args.initiator}
    if mode is not Mode.STATIC:
        for flag, value in static_only.items():
            if value is not None:
                raise InputError(
                    f"{flag} belongs to static-portal mode (--portal); "
                    f"{mode.value} mode takes it from elsewhere"
                )
    initiator = target = portal = None
    if mode is Mode.STATIC:
        portal = parse_portal(args.portal)
        if args.target is None:
            raise InputError("--portal needs --target NAME (the target's iqn./eui./naa. name)")
        target = parse_iscsi_name(args.target, "--target")
        initiator = (
            parse_iscsi_name(args.initiator, "--initiator")
            if args.initiator
            else read_initiator_name(args.root)
        )

    params: dict[str, str] = dict(RESILIENT_PARAMS) if args.resilient else {}
    for text in args.params:
        name, value = parse_param(text)
        params.pop(name, None)  # a repeated name: the last one wins, in its place
        params[name] = value

    chap = _chap(args.chap_user, args.chap_secret_file, "--chap", warnings)
    chap_in = _chap(args.chap_in_user, args.chap_in_secret_file, "--chap-in", warnings)

    retry = Retry(
        attempts=parse_number(args.retries, "--retries", 1, 100),
        delay=parse_number(args.retry_delay, "--retry-delay", 0, 600),
        attempt_timeout=parse_number(args.attempt_timeout, "--attempt-timeout", 2, 600),
    )
    config = HookConfig(
        mode=mode,
        initiator=initiator,
        target=target,
        portal=portal,
        tpgt=parse_number(args.tpgt, "--tpgt", 1, 65535),
        params=tuple(params.items()),
        chap=chap,
        chap_in=chap_in,
        retry=retry,
        nic_modules=tuple(parse_module(m) for m in args.nic_modules),
    )
    return config, warnings


def _chap(
    user: str | None, secret_file: Path | None, prefix: str, warnings: list[str]
) -> Chap | None:
    if user is None and secret_file is None:
        return None
    if user is None or secret_file is None:
        raise InputError(f"{prefix}-user and {prefix}-secret-file go together; give both")
    username = parse_chap_user(user, f"{prefix}-user")
    secret, warning = read_chap_secret(secret_file, f"{prefix}-secret-file")
    if warning:
        warnings.append(warning)
    return Chap(username, secret)


def regenerate_command(args: argparse.Namespace, config: HookConfig) -> str:
    """The call that renders the same hooks, for the header of each file (no secrets)."""
    words = [PROG]
    if config.mode is Mode.IBFT:
        words.append("--ibft")
    elif config.mode is Mode.GENERIC:
        words.append("--generic")
    else:
        assert config.portal and config.target and config.initiator
        words += [
            "--portal",
            str(config.portal),
            "--target",
            config.target,
            "--initiator",
            config.initiator,
        ]
        if config.tpgt != 1:
            words += ["--tpgt", str(config.tpgt)]
    for name, value in config.params:
        words += ["-P", f"{name}={value}"]
    for prefix, chap, secret_file in (
        ("--chap", config.chap, args.chap_secret_file),
        ("--chap-in", config.chap_in, args.chap_in_secret_file),
    ):
        if chap:
            words += [f"{prefix}-user", chap.username, f"{prefix}-secret-file", str(secret_file)]
    defaults = Retry()
    for flag, number, default in (
        ("--retries", config.retry.attempts, defaults.attempts),
        ("--retry-delay", config.retry.delay, defaults.delay),
        ("--attempt-timeout", config.retry.attempt_timeout, defaults.attempt_timeout),
    ):
        if number != default:
            words += [flag, str(number)]
    for module in config.nic_modules:
        words += ["--nic-module", module]
    return shlex.join(words)


def hook_directory(args: argparse.Namespace) -> Path:
    if args.output is not None:
        return Path(args.output)
    root = Path(args.root)
    if not root.is_dir():
        raise InputError(f"--root {str(root)!r} is not a directory")
    return root / "etc/initcpio"


def check_overwrite(directory: Path, files: Sequence[RenderedFile], force: bool) -> None:
    """Refuse to replace a hook someone wrote by hand: it may be their only working copy."""
    if force:
        return
    for file in files:
        path = directory / file.path
        try:
            head = path.read_text("utf-8", errors="replace").splitlines()[:3]
        except FileNotFoundError:
            continue
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror}") from None
        if not any(line.startswith(MARKER_PREFIX) for line in head):
            raise InputError(
                f"{path} exists and was not written by {PROG}; move it away "
                "or pass --force to replace it"
            )


def write_files(directory: Path, files: Sequence[RenderedFile], out: Any) -> None:
    for file in files:
        path = directory / file.path
        data = file.content.encode()
        try:
            if path.read_bytes() == data and (not file.secret or path.stat().st_mode & 0o077 == 0):
                print(f"unchanged: {path}", file=out)
                continue
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write(path, data, mode=file.mode, keep_mode=not file.secret)
        print(f"wrote: {path} ({file.mode:04o})", file=out)


def show_files(directory: Path, files: Sequence[RenderedFile], out: Any) -> None:
    for file in files:
        path = directory / file.path
        print(f"--- would write {path} ({file.mode:04o})", file=out)
        if file.secret:
            print("(CHAP credentials: contents not shown)", file=out)
        else:
            out.write(file.content)


def next_steps(
    config: HookConfig,
    args: argparse.Namespace,
    out: Any,
    *,
    hooks_edited: bool = False,
    kind: ImageKind | None = None,
) -> None:
    """What is left to do, for the kind of image ROOT builds (both kinds when not known)."""
    static = config.mode is Mode.STATIC
    chroot = f"arch-chroot {args.root} " if Path(args.root) != Path("/") else ""
    step = iter(range(1, 10))
    print("\nNext steps:", file=out)
    if not hooks_edited:
        print(f"  {next(step)}. {_hooks_advice(static, kind)}", file=out)
    if static:
        print(f"  {next(step)}. {_network_advice(kind)}", file=out)
    print(f"  {next(step)}. Rebuild the images: {chroot}mkinitcpio -P", file=out)


def _hooks_advice(static: bool, kind: ImageKind | None) -> str:
    busybox = "'net iscsi'" if static else "'iscsi'"
    if kind is ImageKind.BUSYBOX:
        return (
            f"In HOOKS (mkinitcpio.conf), put {busybox} after 'base udev' and right before "
            "'block' (and before encrypt, lvm2, filesystems)."
        )
    if kind is ImageKind.SYSTEMD:
        return (
            "In HOOKS (mkinitcpio.conf), put 'iscsi' after 'base systemd' and right before "
            "'block' (and before sd-encrypt, lvm2, filesystems)"
            + ("; no 'net' in a systemd-based image." if static else ".")
        )
    return (
        f"In HOOKS (mkinitcpio.conf), put {busybox} after 'base udev' in a busybox-based "
        "image, or 'iscsi' after 'base systemd' in a systemd-based one, right before "
        "'block' (and before encrypt or sd-encrypt, lvm2, filesystems)."
    )


def _network_advice(kind: ImageKind | None) -> str:
    if kind is ImageKind.BUSYBOX:
        return (
            "Install mkinitcpio-nfs-utils (the 'net' hook) and add ip=dhcp "
            "(or a static ip=) to the kernel command line."
        )
    if kind is ImageKind.SYSTEMD:
        return (
            "Add ip=dhcp (or ip=CLIENT::GATEWAY:NETMASK::DEVICE:none) to the kernel command "
            "line: in a systemd-based image the iscsi hook brings the network up from it."
        )
    return (
        "Add ip=dhcp (or a static ip=) to the kernel command line; a busybox-based image "
        "also needs mkinitcpio-nfs-utils (the 'net' hook)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["hooks"]:
        return hooks_cli.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        config, warnings = config_from_args(args)
        for warning in warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        files = render(config, regenerate_command(args, config))
        directory = hook_directory(args)
        check_overwrite(directory, files, args.force)
        with_net = config.mode is Mode.STATIC
        hooks = hooks_cli.plan_main_flow(
            root=args.root, with_net=with_net, no_edit=args.no_edit, output=args.output is not None
        )
        if args.dry_run:
            show_files(directory, files, sys.stdout)
        else:
            write_files(directory, files, sys.stdout)
        hooks_cli.run_main_flow(
            hooks.step,
            root=args.root,
            with_net=with_net,
            dry_run=args.dry_run,
            out=sys.stdout,
            err=sys.stderr,
        )
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{PROG}: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    next_steps(
        config,
        args,
        sys.stdout,
        hooks_edited=hooks.step is hooks_cli.HooksStep.EDIT or hooks.hooks_right,
        kind=hooks.kind,
    )
    return 0
