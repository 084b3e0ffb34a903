"""What the command-line parser declares, read back for the man page and the completions.

argparse is the one definition of the options. Documentation and completions are
rendered from the parser object itself, so an option added to the program shows up in
both without anyone remembering to. argparse offers no public way to list what a parser
holds; the attributes read here (_actions, _action_groups, ...) are the ones its own help
formatter reads, and tests compare the result with --help.
"""

import argparse
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Argument:
    """An option (flags set) or a positional argument (no flags)."""

    flags: tuple[str, ...]
    metavar: str | None  # None: a switch that takes no value
    help: str
    choices: tuple[str, ...]
    path: bool  # the value names a file or directory (completions offer paths)
    directory: bool  # ... and only a directory makes sense
    repeatable: bool  # each use adds to a list (or a count); a positional takes several
    optional: bool  # a positional that may be left out


@dataclass(frozen=True)
class Group:
    title: str
    arguments: tuple[Argument, ...]


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # ("iscsi-hookgen",) or ("iscsi-hookgen", "hooks")
    summary: str  # the one line a parent command shows for it; "" for the top
    description: str
    epilog: str
    groups: tuple[Group, ...]
    exclusive: tuple[tuple[str, ...], ...]  # first flags of options that exclude each other
    subcommands: tuple["Command", ...]

    @property
    def arguments(self) -> tuple[Argument, ...]:
        return tuple(a for group in self.groups for a in group.arguments)

    @property
    def options(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if a.flags)

    @property
    def positionals(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if not a.flags)

    def walk(self) -> tuple["Command", ...]:
        """This command and every subcommand below it, parents first."""
        return (self, *(c for sub in self.subcommands for c in sub.walk()))


_REPEATABLE = (
    argparse._AppendAction,
    argparse._AppendConstAction,
    argparse._CountAction,
    argparse._ExtendAction,
)


_MANY = ("*", "+", argparse.REMAINDER)
_MAYBE = ("?", "*", argparse.REMAINDER)


def _is_directory_metavar(metavar: str | None) -> bool:
    return metavar is not None and metavar.split("[")[0].rstrip(".") in {"DIR", "DIRECTORY"}


def _argument(parser: argparse.ArgumentParser, action: argparse.Action) -> Argument:
    takes_value = action.nargs != 0
    metavar: str | None = None
    if takes_value:
        if isinstance(action.metavar, tuple):
            metavar = " ".join(action.metavar)
        elif action.metavar is not None:
            metavar = action.metavar
        else:
            metavar = action.dest.upper()
    path = takes_value and (
        action.type is Path
        or isinstance(action.type, argparse.FileType)
        or (metavar or "").split("[")[0] in {"FILE", "PATH", "DIR", "DIRECTORY"}
    )
    # The help formatter's own expansion, so %(default)s and friends read as in --help.
    help_text = parser._get_formatter()._expand_help(action) if action.help else ""
    return Argument(
        flags=tuple(action.option_strings),
        metavar=metavar,
        help=" ".join(help_text.split()),
        choices=tuple(str(c) for c in action.choices or ()) if takes_value else (),
        path=path,
        directory=path and _is_directory_metavar(metavar),
        repeatable=isinstance(action, _REPEATABLE) or action.nargs in _MANY,
        optional=not action.option_strings and action.nargs in _MAYBE,
    )


def describe(
    parser: argparse.ArgumentParser,
    words: tuple[str, ...] | None = None,
    summary: str = "",
    subparsers: Mapping[str, argparse.ArgumentParser] | None = None,
) -> Command:
    """Read a parser (and its subparsers, recursively) into a Command.

    `subparsers` adds commands that the program dispatches to a parser of their own
    instead of through argparse's add_subparsers().
    """
    words = words or (parser.prog,)
    groups: list[Group] = []
    subcommands: list[Command] = []
    for group in parser._action_groups:
        arguments: list[Argument] = []
        for action in group._group_actions:
            if action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._SubParsersAction):
                subcommands += _subcommands(action, words)
                continue
            arguments.append(_argument(parser, action))
        if arguments:
            groups.append(Group(group.title or "options", tuple(arguments)))
    for name, subparser in (subparsers or {}).items():
        subcommands.append(describe(subparser, (*words, name), _first_sentence(subparser)))
    exclusive = tuple(
        tuple(a.option_strings[0] for a in group._group_actions if a.option_strings)
        for group in parser._mutually_exclusive_groups
    )
    return Command(
        words=words,
        summary=summary,
        description=" ".join((parser.description or "").split()),
        epilog=" ".join((parser.epilog or "").split()),
        groups=tuple(groups),
        exclusive=exclusive,
        subcommands=tuple(subcommands),
    )


def _first_sentence(parser: argparse.ArgumentParser) -> str:
    return " ".join((parser.description or "").split()).split(". ")[0].rstrip(".")


def _subcommands(
    action: "argparse._SubParsersAction[argparse.ArgumentParser]", words: tuple[str, ...]
) -> list[Command]:
    summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
    seen: set[int] = set()
    commands: list[Command] = []
    for name, subparser in action.choices.items():
        if id(subparser) in seen:  # an alias of a command already listed
            continue
        seen.add(id(subparser))
        commands.append(
            describe(subparser, (*words, name), summaries.get(name) or _first_sentence(subparser))
        )
    return commands


def program() -> Command:
    """The whole iscsi-hookgen command line, as the program parses it.

    A subcommand NAME lives in a module NAME_cli with a build_parser(), and cli.main hands
    `iscsi-hookgen NAME ...` to it; such modules are found here, so a new one is documented
    and completed without a list to keep up to date.
    """
    import iscsi_hookgen
    from iscsi_hookgen import cli

    subparsers = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(iscsi_hookgen.__path__)):
        if module.endswith("_cli"):
            parser = importlib.import_module(f"iscsi_hookgen.{module}").build_parser()
            subparsers[module.removesuffix("_cli")] = parser
    return describe(cli.build_parser(), subparsers=subparsers)
