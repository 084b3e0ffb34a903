"""bash and zsh completion scripts, rendered from the command-line parser.

`python -m iscsi_hookgen.completion bash|zsh` prints the script; the PKGBUILD runs it at
build time, so the completions offer exactly the options the installed program accepts.
"""

import sys

from iscsi_hookgen.clispec import Argument, Command, program

HEADER = '# Rendered by "python -m iscsi_hookgen.completion {shell}" from the {name} parser.'


def _sq(text: str) -> str:
    """A single-quoted shell word (bash and zsh read it the same way)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _function_name(words: tuple[str, ...]) -> str:
    """A shell function name for a command: _iscsi_hookgen, _iscsi_hookgen_hooks."""
    return "_" + "_".join("".join(c if c.isalnum() else "_" for c in w) for w in words)


def _bash_value(argument: Argument, reply: str) -> str:
    """The statement that fills COMPREPLY for one value of `argument`."""
    if argument.choices:
        return f'{reply} compgen -W {_sq(" ".join(argument.choices))} -- "$cur"'
    if argument.path:
        # compopt marks the words as file names (a slash after directories); it fails
        # harmlessly when the function is called outside completion, as in tests.
        kind = "-d" if argument.directory else "-f"
        return f'compopt -o filenames 2>/dev/null; {reply} compgen {kind} -- "$cur"'
    return "COMPREPLY=()"  # a name, an address, a number: nothing sensible to offer


def _bash_cases(cases: dict[str, list[str]], indent: str, then: str) -> list[str]:
    """`case` branches, one pattern per line, as a long list of options reads best."""
    lines = []
    for statement, labels in cases.items():
        lines.append(indent + f"|\\\n{indent}".join(labels) + ")")
        lines += [
            f"{indent}    {statement}",
            f"{indent}    {then} ;;" if then else f"{indent}    ;;",
        ]
    return lines


def _slots(command: Command) -> tuple[Argument, ...]:
    """The words a command takes after its options, in order: its subcommand, or its
    positional arguments."""
    if command.subcommands:
        names = tuple(s.words[-1] for s in command.subcommands)
        return (Argument((), "COMMAND", "", names, False, False, False, False),)
    return command.positionals


def bash(top: Command) -> str:
    """A script for bash's `complete -F`, loaded by bash-completion or sourced by hand.

    It needs nothing but bash. Words come from COMP_WORDS, where bash has split
    `--opt=value` into `--opt`, `=`, `value` (and `a:b` into `a`, `:`, `b`).
    """
    name = top.words[0]
    function = _function_name(top.words)
    reply = f"{function}_reply"
    commands = top.walk()

    def label(command: Command, word: str) -> str:
        return _sq(f"{' '.join(command.words)}|{word}")

    scan: dict[str, list[str]] = {}  # statement -> case labels that run it
    values: dict[str, list[str]] = {}
    positions: dict[str, list[str]] = {}
    clamps: dict[str, list[str]] = {}  # a last slot that repeats takes every later word
    for c in commands:
        for a in c.options:
            if a.metavar is not None:
                scan.setdefault("skip=1", []).extend(label(c, f) for f in a.flags)
                values.setdefault(_bash_value(a, reply), []).extend(label(c, f) for f in a.flags)
        for sub in c.subcommands:
            scan[f"command={_sq(' '.join(sub.words))} position=0"] = [label(c, sub.words[-1])]
        for index, slot in enumerate(_slots(c)):
            positions.setdefault(_bash_value(slot, reply), []).append(label(c, str(index)))
            if slot.repeatable:
                clamp = f"((position > {index})) && position={index}"
                clamps.setdefault(clamp, []).append(_sq(" ".join(c.words)))
    options = {
        f"options={_sq(' '.join(f for a in c.options for f in a.flags))}": [_sq(" ".join(c.words))]
        for c in commands
    }
    lines = [
        f"# bash completion for {name}",
        "# SPDX-License-Identifier: MIT",
        HEADER.format(shell="bash", name=name),
        "",
        f'{reply}() {{ mapfile -t COMPREPLY < <("$@"); }}',
        "",
        f"{function}() {{",
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev='' i word skip=0 position=0 options=''",
        f"    local command={_sq(name)}",
        "    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}",
        "    if [[ $cur == = ]]; then",
        "        cur=''",
        "    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then",
        "        prev=${COMP_WORDS[COMP_CWORD - 2]}",
        "    fi",
        "",
        "    # Which (sub)command is being typed, and how many of its positional words",
        "    # precede this one. Option values are skipped: a value may look like a",
        "    # command name.",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        word=${COMP_WORDS[i]}",
        "        if [[ $word == [=:] ]]; then",
        "            skip=1  # what follows continues the previous word",
        "            continue",
        "        elif ((skip)); then",
        "            skip=0",
        "            continue",
        "        fi",
        '        case "$command|$word" in',
        *_bash_cases(scan, "            ", ""),
        "            *) [[ $word == -* ]] || ((position++)) ;;",
        "        esac",
        "    done",
        "",
        '    case "$command|$prev" in',
        *_bash_cases(values, "        ", "return"),
        "    esac",
        '    case "$command" in',
        *_bash_cases(options, "        ", ""),
        "    esac",
        "    if [[ $cur == -* ]]; then",
        f'        {reply} compgen -W "$options" -- "$cur"',
        "        return",
        "    fi",
        "    COMPREPLY=()",
    ]
    if clamps:
        lines += ['    case "$command" in', *_bash_cases(clamps, "        ", ""), "    esac"]
    if positions:
        lines += [
            '    case "$command|$position" in',
            *_bash_cases(positions, "        ", ""),
            "    esac",
        ]
    lines += ["}", "", f"complete -F {function} {name}"]
    return "\n".join(lines) + "\n"


def _zsh_escape(text: str) -> str:
    """Text inside an _arguments spec: brackets and colons are syntax there."""
    for char in "\\[]:":
        text = text.replace(char, "\\" + char)
    return text


def _zsh_action(argument: Argument) -> str:
    """What zsh offers for the argument's value."""
    if argument.choices:
        return "(" + " ".join(_zsh_escape(c) for c in argument.choices) + ")"
    if argument.path:
        return "_files -/" if argument.directory else "_files"
    return " "  # a value is needed but nothing can be offered


def _zsh_spec(argument: Argument, command: Command) -> list[str]:
    """The _arguments specs for one option (one per flag, so each can exclude the rest)."""
    if argument.metavar is None:
        value = ""
    else:
        value = f":{_zsh_escape(argument.metavar)}:{_zsh_action(argument)}"
    help_text = f"[{_zsh_escape(argument.help)}]"
    exclusions = set(argument.flags)
    for group in command.exclusive:
        if argument.flags[0] in group:
            for other in command.options:
                if other.flags[0] in group:
                    exclusions.update(other.flags)
    if argument.flags[0] in {"-h", "--help", "--version"}:
        exclusions = {"-", "*"}  # nothing else makes sense with these
    repeat = "*" if argument.repeatable else ""
    specs = []
    for flag in argument.flags:
        exclude = "(" + " ".join(sorted(exclusions)) + ")" if not repeat else ""
        suffix = "=" if flag.startswith("--") and value else ("+" if value else "")
        specs.append(f"{exclude}{repeat}{flag}{suffix}{help_text}{value}")
    return specs


def zsh(top: Command) -> str:
    """An autoloadable completion function for zsh's compsys (#compdef)."""
    lines = [
        f"#compdef {top.words[0]}",
        "# SPDX-License-Identifier: MIT",
        HEADER.format(shell="zsh", name=top.words[0]),
    ]
    for command in reversed(top.walk()):
        specs = [_sq(s) for a in command.options for s in _zsh_spec(a, command)]
        for positional in command.positionals:
            repeat = "*" if positional.repeatable else ""
            message = _zsh_escape(positional.metavar or "")
            specs.append(_sq(f"{repeat}:{message}:{_zsh_action(positional)}"))
        body = [f"{_function_name(command.words)}() {{"]
        if command.subcommands:
            entries = " ".join(
                _sq(f"{_zsh_escape(s.words[-1])}:{s.summary or s.description}")
                for s in command.subcommands
            )
            specs += ["': :->command'", "'*:: :->argument'"]
            body += [
                "    local curcontext=$curcontext state line",
                "    local -a commands=(" + entries + ")",
                "    _arguments -C -s -S \\",
                *(f"        {s} \\" for s in specs[:-1]),
                f"        {specs[-1]} && return",
                "    case $state in",
                "        command) _describe -t commands command commands ;;",
                "        argument)",
                "            case $line[1] in",
                *(
                    f"                {_sq(s.words[-1])}) {_function_name(s.words)} ;;"
                    for s in command.subcommands
                ),
                "            esac ;;",
                "    esac",
            ]
        else:
            body += [
                "    _arguments -s -S \\",
                *(f"        {s} \\" for s in specs[:-1]),
                f"        {specs[-1]}",
            ]
        lines += ["", *body, "}"]
    lines += ["", f'{_function_name(top.words)} "$@"']
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    shells = {"bash": bash, "zsh": zsh}
    if len(args) != 1 or args[0] not in shells:
        print(f"usage: python -m iscsi_hookgen.completion {{{'|'.join(shells)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(shells[args[0]](program()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
