"""`iscsi-hookgen hooks show|add|remove|check`: look at or change mkinitcpio's HOOKS."""

import argparse
import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from iscsi_hookgen import conf_edit
from iscsi_hookgen.config import InputError

ACTIONS = ("show", "add", "remove", "check")

# One table of options: (flags, argparse keyword arguments).
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("action",), {"choices": ACTIONS, "help": "what to do with HOOKS"}),
    (
        ("names",),
        {
            "nargs": "*",
            "metavar": "NAME",
            "help": "hook names (add, remove; check: default iscsi, and net if present)",
        },
    ),
    (
        ("--root",),
        {
            "type": Path,
            "default": Path("/"),
            "metavar": "DIR",
            "help": "system root holding etc/mkinitcpio.conf and etc/mkinitcpio.conf.d/ "
            "(default: /)",
        },
    ),
    (
        ("--config",),
        {
            "type": Path,
            "metavar": "FILE",
            "help": "use only this file, ignoring drop-ins, as mkinitcpio -c does",
        },
    ),
    (
        ("--dry-run",),
        {"action": "store_true", "help": "print the change as a unified diff, write nothing"},
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InputError(f"hooks: {message} (see iscsi-hookgen hooks --help)")


def build_parser(prog: str = "iscsi-hookgen hooks") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Show, add, remove or check hooks in mkinitcpio's HOOKS array. "
        "The configuration is read as mkinitcpio reads it (drop-ins included) and "
        "changed atomically, with a backup, in the file that decides the order.",
    )
    for flags, kwargs in OPTIONS:
        parser.add_argument(*flags, **kwargs)
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        return _run(build_parser().parse_args(list(argv)))
    except InputError as e:
        print(f"iscsi-hookgen: {_one_line(str(e))}", file=sys.stderr)
        return 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _run(args: argparse.Namespace) -> int:
    root: Path = args.root
    config: Path | None = args.config
    names: list[str] = args.names
    if config is not None and root != Path("/"):
        raise InputError("hooks: give --root DIR or --config FILE, not both")
    for name in names:
        if not conf_edit.valid_hook_name(name):
            raise InputError(
                f"hooks: {name!r} is not a hook name (letters, digits, '_', '-', '.', '+')"
            )
    if args.action == "show":
        if names:
            raise InputError("hooks show takes no hook names")
        return _show(root, config)
    if args.action == "check":
        return _check(root, config, names)
    if not names:
        raise InputError(f"hooks {args.action} needs at least one hook name")
    edit = conf_edit.add_hooks if args.action == "add" else conf_edit.remove_hooks
    result = edit(root=root, config=config, names=names, dry_run=args.dry_run)
    print_result(result)
    return 0


def print_result(result: conf_edit.EditResult) -> None:
    """What changed (or would), then the diff for a dry run."""
    for message in result.messages:
        print(message)
    if result.diff and not result.written:
        sys.stdout.write(result.diff)


def _show(root: Path, config: Path | None) -> int:
    analysis = conf_edit.load(root=root, config=config)
    print(" ".join(analysis.hooks))
    files = analysis.deciding_files()
    print(f"a {analysis.kind.value}-based image", file=sys.stderr)
    if files:
        decided = f"HOOKS is decided by {files[0]}"
        if len(files) > 1:
            decided += " and appended to by " + ", ".join(str(f) for f in files[1:])
        print(decided, file=sys.stderr)
    else:
        read = ", ".join(str(f.path) for f in analysis.config.files)
        print(f"HOOKS as bash evaluates {read}", file=sys.stderr)
    if analysis.problem is not None:
        print(f"note: the editor cannot change HOOKS here: {analysis.problem}", file=sys.stderr)
    for rule in conf_edit.rules_for(analysis):
        if rule.unwanted and rule.hook in analysis.hooks:
            print(f"note: {rule.hook!r} is {rule.unwanted}", file=sys.stderr)
    for note in conf_edit.advisories(analysis, root=root):
        print(note, file=sys.stderr)
    return 0


def _check(root: Path, config: Path | None, names: list[str]) -> int:
    analysis = conf_edit.load(root=root, config=config)
    if not names:
        # a net that is there is there for iscsi: check it too
        names = ["net", "iscsi"] if "net" in analysis.hooks else ["iscsi"]
    problems = conf_edit.check_order(analysis, names)
    if problems:
        print(
            f"iscsi-hookgen: HOOKS ({' '.join(analysis.hooks)}) is not right: "
            + "; ".join(problems),
            file=sys.stderr,
        )
        return 1
    print(f"HOOKS is right: {' '.join(analysis.hooks)}")
    return 0


# --- the main command's HOOKS step ----------------------------------------------


class HooksStep(enum.Enum):
    EDIT = "edit"  # change HOOKS in ROOT's configuration
    SHOW = "show"  # --no-edit: print the change to make
    OUTPUT = "output"  # --output: the hooks go elsewhere, ROOT is not being set up
    NO_CONFIG = "no-config"  # mkinitcpio is not installed under ROOT: nothing to edit


@dataclass(frozen=True)
class MainFlowPlan:
    step: HooksStep
    kind: conf_edit.ImageKind | None  # the image ROOT's configuration builds; None: not read
    hooks_right: bool = False  # HOOKS needs no change (whatever the step)


def plan_main_flow(*, root: Path, with_net: bool, no_edit: bool, output: bool) -> MainFlowPlan:
    """Decide, and validate before anything is written: a refusal raises InputError."""
    if output:
        return MainFlowPlan(HooksStep.OUTPUT, None)
    if not conf_edit.main_config_path(root).exists():
        return MainFlowPlan(HooksStep.NO_CONFIG, None)
    if no_edit:
        try:
            kind = conf_edit.load(root=root, config=None).kind
            right = not conf_edit.ensure_iscsi_hooks(
                root=root, config=None, with_net=with_net, dry_run=True
            ).changed
        except InputError:
            kind, right = None, False  # the printed change says why
        return MainFlowPlan(HooksStep.SHOW, kind, right)
    try:
        kind = conf_edit.load(root=root, config=None).kind
        conf_edit.ensure_iscsi_hooks(root=root, config=None, with_net=with_net, dry_run=True)
    except InputError as e:
        raise InputError(f"{e} (--no-edit skips this step)") from None
    return MainFlowPlan(HooksStep.EDIT, kind)


def run_main_flow(
    step: HooksStep, *, root: Path, with_net: bool, dry_run: bool, out: TextIO, err: TextIO
) -> None:
    if step is HooksStep.OUTPUT:
        return
    if step is HooksStep.NO_CONFIG:
        print(
            f"iscsi-hookgen: note: {conf_edit.main_config_path(root)} does not exist: "
            "HOOKS not edited",
            file=err,
        )
        return
    if step is HooksStep.SHOW:
        out.write(conf_edit.describe_manual_change(root=root, config=None, with_net=with_net))
        return
    result = conf_edit.ensure_iscsi_hooks(
        root=root, config=None, with_net=with_net, dry_run=dry_run
    )
    for message in result.messages:
        print(message, file=out)
    if result.diff and not result.written:
        out.write(result.diff)
