"""The man page and the shell completions: rendered from the parser, and complete.

Both are generated from the argparse parser at package build time. These tests hold the
generated files against `--help` (every option the program accepts is documented and
completed), run the man page through man(1) with warnings on, and run the completions in
real bash and zsh.
"""

import argparse
import contextlib
import importlib
import io
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iscsi_hookgen import cli, clispec, completion, manpage
from iscsi_hookgen.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
PROG = "iscsi-hookgen"


def help_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string that --help prints, read from the text a user sees."""
    flags = set()
    # An option's line starts two spaces in: "  -P NAME=VALUE, --param NAME=VALUE  help".
    for invocation in re.findall(r"^  (-\S.*?)(?:  |$)", parser.format_help(), re.MULTILINE):
        flags.update(part.split()[0] for part in invocation.split(", "))
    return flags


def sample_parser() -> argparse.ArgumentParser:
    """A parser with what the program's own does not have (yet): subcommands, positionals."""
    parser = argparse.ArgumentParser(prog="tool", description="Do things. More text.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more")
    parser.add_argument("--mode", choices=["fast", "slow"], help="how")
    parser.add_argument("--name", help="any word")
    sub = parser.add_subparsers(dest="command")
    edit = sub.add_parser("edit", help="edit a file")
    edit.add_argument("file", type=Path, help="the file")
    edit.add_argument("--backup-dir", metavar="DIR", type=Path, help="where backups go")
    hooks = argparse.ArgumentParser(prog="tool hooks", description="Change HOOKS. Really.")
    hooks.add_argument("action", choices=["show", "add", "remove"], help="what to do")
    hooks.add_argument("names", nargs="*", metavar="NAME", help="hook names")
    hooks.add_argument("--config", metavar="FILE", type=Path, help="only this file")
    sub.add_parser("hooks", parents=[hooks], add_help=False, help="change HOOKS")
    return parser


def render_man(tmp_path: Path, text: str) -> str:
    page = tmp_path / "page.1"
    page.write_text(text)
    done = subprocess.run(
        ["man", "--warnings", "-l", str(page)],
        env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # --warnings: groff's complaints land here
    return done.stdout


# --- man page ------------------------------------------------------------------------


def test_man_page_renders_cleanly_and_documents_every_option(tmp_path: Path) -> None:
    shown = render_man(tmp_path, manpage.render(clispec.program()))
    assert shown.startswith("ISCSI-HOOKGEN(1)")
    flags = help_flags(build_parser())
    assert {"--portal", "--ibft", "--generic", "--chap-secret-file", "-P"} <= flags
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", shown), flag
    for option in build_parser()._actions:
        if option.help and option.metavar:  # the value's name is shown with its flag
            assert f"{option.option_strings[-1]} {option.metavar}" in shown


def test_every_subcommand_module_is_documented_and_dispatched(tmp_path: Path) -> None:
    """A module NAME_cli is the subcommand `iscsi-hookgen NAME`: the man page shows its
    options (read from its own --help), and the program hands NAME to it."""
    package = Path(cli.__file__).parent  # the sources, or the wheel under makepkg's check()
    names = sorted(p.stem.removesuffix("_cli") for p in package.glob("*_cli.py"))
    program = clispec.program()
    assert [c.words[-1] for c in program.subcommands] == names
    shown = render_man(tmp_path, manpage.render(program))
    for command in program.subcommands:
        name = command.words[-1]
        stdout = io.StringIO()
        with pytest.raises(SystemExit) as exited, contextlib.redirect_stdout(stdout):
            cli.main([name, "--help"])
        assert exited.value.code == 0
        assert stdout.getvalue().startswith(f"usage: {PROG} {name} ")
        module = importlib.import_module(f"iscsi_hookgen.{name}_cli")
        assert help_flags(module.build_parser()) <= set(re.findall(r"--?[\w-]+", shown))
        assert f"{PROG} {name}" in shown


def test_man_page_has_the_sections_a_reader_looks_for(tmp_path: Path) -> None:
    program = clispec.program()
    shown = render_man(tmp_path, manpage.render(program))
    headings = re.findall(r"^([A-Z][A-Z ]+)$", shown, re.MULTILINE)
    commands = ["COMMANDS"] if program.subcommands else []
    assert headings == [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "IMAGE KINDS",
        "KERNEL PARAMETERS",
        "OPTIONS",
        *commands,
        "EXIT STATUS",
        "FILES",
        "SEE ALSO",
    ]
    assert "iscsi-hookgen - generate mkinitcpio hooks" in " ".join(shown.split())


def test_man_page_names_every_kernel_parameter_the_runtime_hook_reads(tmp_path: Path) -> None:
    hook = Path(__file__).resolve().parent.parent / "initcpio/hooks/iscsi"
    code = "\n".join(
        line for line in hook.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    read = set(re.findall(r"(?:getarg|iscsi_given|iscsi_all_args) ([a-z_.]+)", code))
    assert {"netroot", "rd.iscsi.param", "iscsi_auto", "rd.iscsi.nic_timeout", "ip"} <= read
    shown = " ".join(render_man(tmp_path, manpage.render(clispec.program())).split())
    assert sorted(key for key in read if key not in shown) == []


def test_man_page_of_a_parser_with_subcommands(tmp_path: Path) -> None:
    parser = sample_parser()
    shown = " ".join(render_man(tmp_path, manpage.render(clispec.describe(parser))).split())
    assert "tool edit [OPTION]... FILE" in shown
    assert "tool hooks [OPTION]... {show|add|remove} [NAME]..." in shown
    assert "COMMANDS tool edit edit a file" in shown
    assert "--backup-dir DIR where backups go" in shown
    assert "--mode MODE how One of: fast, slow." in shown


def test_roff_escaping_keeps_text_literal(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="tool", description="A tool. Yes.")
    parser.add_argument("--x", help=r".starts with a dot, has a \backslash and 'quotes'")
    parser.add_argument("--y", help="'starts with a quote")
    shown = " ".join(render_man(tmp_path, manpage.render(clispec.describe(parser))).split())
    assert r"--x X .starts with a dot, has a \backslash and 'quotes'" in shown
    assert "--y Y 'starts with a quote" in shown


def test_manpage_module_prints_the_page() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "iscsi_hookgen.manpage"],
        env={**os.environ, "PYTHONPATH": str(REPO / "generator")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == manpage.render(clispec.program())


# --- bash completion -----------------------------------------------------------------


def bash_complete(script: str, *words: str, cwd: Path | None = None) -> list[str]:
    """Call the completion function as bash would for `words` (the last is being typed)."""
    array = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (
        f"source /dev/stdin <<'EOF'\n{script}EOF\n"
        f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n"
        'fn=$(complete -p "${COMP_WORDS[0]}" | sed -E "s/.* -F ([^ ]+) .*/\\1/")\n'
        '"$fn"; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "dir-a").mkdir()
    (tmp_path / "dir-b").mkdir()
    (tmp_path / "keyfile").write_text("x")
    return tmp_path


def test_bash_completion_registers_and_passes_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "iscsi-hookgen"
    script.write_text(completion.bash(clispec.program()))
    done = subprocess.run(
        ["bash", "-c", f"source {script} && complete -p {PROG}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"complete -F _iscsi_hookgen {PROG}"
    subprocess.run(["bash", "-n", str(script)], check=True)
    subprocess.run(["shellcheck", "--shell=bash", str(script)], check=True)


def test_bash_offers_every_option_that_help_lists() -> None:
    script = completion.bash(clispec.program())
    assert set(bash_complete(script, PROG, "-")) == help_flags(build_parser())
    assert bash_complete(script, PROG, "--po") == ["--portal"]
    assert bash_complete(script, PROG, "--ibft", "--dr") == ["--dry-run"]


def test_bash_completes_option_values_by_kind(files: Path) -> None:
    script = completion.bash(clispec.program())
    # --root and --output take a directory, the secret options a file.
    assert sorted(bash_complete(script, PROG, "--root", "", cwd=files)) == ["dir-a", "dir-b"]
    assert sorted(bash_complete(script, PROG, "--output", "=", "d", cwd=files)) == [
        "dir-a",
        "dir-b",
    ]
    assert sorted(bash_complete(script, PROG, "--chap-secret-file", "", cwd=files)) == [
        "dir-a",
        "dir-b",
        "keyfile",
    ]
    # A target name or a number cannot be guessed: nothing rather than file names.
    for option in ("--target", "--portal", "--retries", "-P"):
        assert bash_complete(script, PROG, option, "", cwd=files) == [], option


def test_bash_subcommands_positionals_and_option_values(files: Path) -> None:
    parser = sample_parser()
    script = completion.bash(clispec.describe(parser))
    assert bash_complete(script, "tool", "") == ["edit", "hooks"]
    assert bash_complete(script, "tool", "--mode", "") == ["fast", "slow"]
    assert bash_complete(script, "tool", "--mode", "=", "s") == ["slow"]
    # An option's value that looks like a command is not taken for one.
    assert bash_complete(script, "tool", "--name", "hooks", "") == ["edit", "hooks"]
    assert bash_complete(script, "tool", "--name", "=", "hooks", "") == ["edit", "hooks"]
    assert bash_complete(script, "tool", "hooks", "") == ["show", "add", "remove"]
    assert bash_complete(script, "tool", "hooks", "-") == ["-h", "--help", "--config"]
    assert bash_complete(script, "tool", "hooks", "--config", "=", "k", cwd=files) == ["keyfile"]
    assert bash_complete(script, "tool", "hooks", "add", "x", "") == []  # hook names: free
    assert sorted(bash_complete(script, "tool", "edit", "", cwd=files)) == [
        "dir-a",
        "dir-b",
        "keyfile",
    ]
    assert set(bash_complete(script, "tool", "edit", "-")) == {"-h", "--help", "--backup-dir"}


def test_completion_module_prints_scripts_and_refuses_other_shells() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "generator")}
    command = [sys.executable, "-m", "iscsi_hookgen.completion"]
    for shell, render in (("bash", completion.bash), ("zsh", completion.zsh)):
        done = subprocess.run([*command, shell], env=env, capture_output=True, text=True)
        assert (done.returncode, done.stdout) == (0, render(clispec.program()))
    done = subprocess.run([*command, "fish"], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "usage: python -m iscsi_hookgen.completion {bash|zsh}\n"


# --- zsh completion ------------------------------------------------------------------

ZSH = shutil.which("zsh")


def test_zsh_completion_parses_and_names_every_option(tmp_path: Path) -> None:
    assert ZSH, "zsh is needed (.ci/setup installs it)"
    script = tmp_path / f"_{PROG}"
    script.write_text(completion.zsh(clispec.program()))
    subprocess.run([ZSH, "-n", str(script)], check=True)
    text = script.read_text()
    assert text.startswith(f"#compdef {PROG}\n")
    for flag in help_flags(build_parser()):
        assert re.search(rf"[')]\*?{re.escape(flag)}[=+\[]", text), flag


class Zsh:
    """An interactive zsh on a pseudo-terminal, with compsys loaded from `fpath`."""

    PROMPT = "ZTEST> "

    def __init__(self, fpath: Path, cwd: Path) -> None:
        assert ZSH
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become zsh
            os.chdir(cwd)
            os.execve(ZSH, [ZSH, "-f", "-i"], {"PATH": os.environ["PATH"], "TERM": "dumb"})
        self.send(
            f"fpath=({fpath} $fpath); autoload -Uz compinit; compinit -u -D; "
            f"unsetopt zle_bracketed_paste; PS1='{self.PROMPT}'\n"
        )
        self.read_until(self.PROMPT)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read_until(self, expected: str, timeout: float = 15.0) -> str:
        """Output until `expected` shows up; what arrived, for the assertion, otherwise."""
        out = ""
        deadline = time.monotonic() + timeout
        while expected not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                out += os.read(self.fd, 4096).decode(errors="replace")
        return out

    def complete(self, line: str, expected: str) -> str:
        """Type `line`, press TAB, and return the screen output once `expected` is there."""
        self.send(line + "\t")
        out = self.read_until(expected)
        self.send("\x15")  # ^U: clear the line for the next case
        return out

    def close(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def zsh(tmp_path: Path, files: Path) -> Iterator[Zsh]:
    fpath = tmp_path / "functions"
    fpath.mkdir()
    (fpath / f"_{PROG}").write_text(completion.zsh(clispec.program()))
    shell = Zsh(fpath, files)
    yield shell
    shell.close()


def test_zsh_completes_options_and_their_values(zsh: Zsh) -> None:
    assert "--portal=" in zsh.complete(f"{PROG} --po", "--portal=")
    listing = zsh.complete(f"{PROG} --chap-", "--chap-in-secret-file")
    assert re.search(r"--chap-user\s+-- CHAP user name", listing), listing
    assert "--root=dir-" in zsh.complete(f"{PROG} --root=d", "--root=dir-")
    assert "keyfile" in zsh.complete(f"{PROG} --chap-secret-file k", "keyfile")
    # One mode excludes the others: after --ibft, --portal is not offered.
    assert "--portal" not in zsh.complete(f"{PROG} --ibft --p", "--param")


def test_zsh_completes_subcommands_and_their_positionals(tmp_path: Path, files: Path) -> None:
    fpath = tmp_path / "functions"
    fpath.mkdir()
    (fpath / "_tool").write_text(completion.zsh(clispec.describe(sample_parser())))
    shell = Zsh(fpath, files)
    try:
        assert "tool hooks " in shell.complete("tool ho", "tool hooks ")
        listing = shell.complete("tool hooks ", "remove")
        assert {"show", "add", "remove"} <= set(listing.split()), listing
        assert "tool hooks add --config keyfile" in shell.complete(
            "tool hooks add --config k", "keyfile"
        )
        assert "tool edit keyfile" in shell.complete("tool edit k", "keyfile")
    finally:
        shell.close()
