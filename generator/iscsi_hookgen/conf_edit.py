"""Read and change the HOOKS array of mkinitcpio's configuration, safely.

Installers that rewrote mkinitcpio.conf with regular expressions have left
machines that do not boot. This editor works the other way round:

1. it reads the configuration the way mkinitcpio does (the main file, then every
   drop-in in `sort -V` order, or only an explicit `--config` file) and lets real
   bash compute the effective HOOKS;
2. it reads the same files itself, finds every HOOKS statement and models what
   they do; if its model and bash disagree, or a statement is anything but a
   plain list, it refuses;
3. it changes only the bytes of the statements that decide the new positions,
   keeping their layout;
4. it evaluates the edited configuration with bash again: the effective HOOKS
   must be exactly the intended list and every other variable unchanged;
5. only then does it write, atomically, keeping a backup, and refusing when the
   file changed on disk meanwhile.
"""

import difflib
import enum
import errno
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from iscsi_hookgen.atomic import ChangedOnDiskError, atomic_write, resolve_target
from iscsi_hookgen.config import InputError
from iscsi_hookgen.shell_lex import LexError, Token, TokenKind, tokenize


class ConfEditError(InputError):
    """The editor refuses: the message says why and that nothing was written."""


class EvaluationError(ConfEditError):
    """Bash cannot source the configuration (it would stop mkinitcpio too)."""


class SystemdImageError(ConfEditError):
    """The image is systemd-based, which the ordering table does not cover yet."""


class ImageKind(enum.Enum):
    BUSYBOX = "busybox"
    SYSTEMD = "systemd"


@dataclass(frozen=True)
class OrderRule:
    hook: str
    after: frozenset[str]
    before: frozenset[str]


# Hooks that need the root disk's block devices; iSCSI must have logged in
# before the first of them runs.
_ROOT_DISK_CONSUMERS = frozenset(
    {
        "block",  # loads the block-device drivers and is where the wiki puts iscsi after
        "encrypt",  # opens a LUKS container on the disk
        "plymouth-encrypt",  # plymouth's variant of encrypt
        "encryptssh",  # encrypt unlocked over ssh (mkinitcpio-utils)
        "lvm2",  # activates volume groups found on the disk
        "mdadm",  # assembles software RAID (old hook name)
        "mdadm_udev",  # assembles software RAID
        "dmraid",  # activates firmware RAID sets
        "bcache",  # registers bcache backing devices
        "resume",  # reads the hibernation image from a swap device
        "zfs",  # imports pools
        "btrfs",  # scans for multi-device filesystems
        "filesystems",  # loads filesystem drivers for mounting root
        "fsck",  # checks the root filesystem before it is mounted
        "usr",  # mounts a separate /usr
    }
)

# The ordering rules, per image kind, in the order they are applied: a rule may
# refer to hooks placed by an earlier one (net is placed relative to iscsi).
# A kind missing here is not supported yet (systemd: issue 6).
ORDERING: dict[ImageKind, tuple[OrderRule, ...]] = {
    ImageKind.BUSYBOX: (
        # iscsi runs its run_hook after base (busybox, init_functions) and udev
        # (NIC drivers are loaded by then), and before anything reads the disk.
        OrderRule("iscsi", after=frozenset({"base", "udev"}), before=_ROOT_DISK_CONSUMERS),
        # net (static-portal mode) brings up the address iscsistart logs in
        # over: after udev has loaded the NIC driver, right before iscsi.
        OrderRule(
            "net",
            after=frozenset({"base", "udev"}),
            before=frozenset({"iscsi"}) | _ROOT_DISK_CONSUMERS,
        ),
    ),
}

BACKUP_SUFFIX = ".iscsi-hookgen.bak"  # not *.conf: mkinitcpio never reads it

_HOOK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?)(\+?)=")
_HOOKS_REFERENCE = re.compile(r"(?<![A-Za-z0-9_])HOOKS(?![A-Za-z0-9_])")
_EVAL_TIMEOUT = 20.0


def valid_hook_name(name: str) -> bool:
    return _HOOK_NAME.match(name) is not None


def _name_problem(name: str) -> str | None:
    if valid_hook_name(name):
        return None
    if name.startswith("@") and name.endswith("@"):
        return f"HOOKS holds the build-time placeholder {name!r}, not a hook name"
    if name.strip(".") == "":
        return f"HOOKS holds {name!r}, an elision from an example, not a hook name"
    return f"HOOKS holds {name!r}, which is not a hook name"


# --- reading the configuration ------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    path: Path  # as mkinitcpio names it; may be a symlink
    data: bytes
    dropin: bool


@dataclass(frozen=True)
class ConfigSet:
    files: tuple[ConfigFile, ...]
    explicit: bool  # --config: drop-ins ignored, as with mkinitcpio -c

    @property
    def main(self) -> ConfigFile:
        return self.files[0]


def main_config_path(root: Path) -> Path:
    return root / "etc" / "mkinitcpio.conf"


def read_config(*, root: Path, config: Path | None) -> ConfigSet:
    """Read the files mkinitcpio would read, in the order it reads them."""
    main = config if config is not None else main_config_path(root)
    files = [ConfigFile(main, _read(main), dropin=False)]
    if config is None:
        dropdir = Path(f"{main}.d")
        for path in _dropins(dropdir):
            files.append(ConfigFile(path, _read(path), dropin=True))
    return ConfigSet(tuple(files), explicit=config is not None)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfEditError(
            f"{path}: no such file (the mkinitcpio configuration to edit)"
        ) from None
    except OSError as e:
        raise ConfEditError(f"{path}: cannot read: {e.strerror}") from None


def _dropins(dropdir: Path) -> list[Path]:
    # mkinitcpio's find starts at the directory without following it: a
    # symlinked mkinitcpio.conf.d yields no drop-ins at all.
    if not dropdir.is_dir() or dropdir.is_symlink():
        return []
    # mkinitcpio: find -maxdepth 1 -xtype f -name '*.conf', names sorted with
    # `sort -zVu` in C.UTF-8, each read only if readable.
    names = [
        entry.name
        for entry in os.scandir(dropdir)
        if entry.name.endswith(".conf") and os.path.isfile(entry.path)
    ]
    if not names:
        return []
    result = subprocess.run(
        ["sort", "-zVu"],
        input=b"".join(name.encode("utf-8", "surrogateescape") + b"\0" for name in names),
        capture_output=True,
        env={"LC_ALL": "C.UTF-8", "PATH": os.defpath},
        check=True,
    )
    ordered = [n.decode("utf-8", "surrogateescape") for n in result.stdout.split(b"\0") if n]
    return [dropdir / n for n in ordered if os.access(dropdir / n, os.R_OK)]


# --- what bash says -----------------------------------------------------------

# Sourced as mkinitcpio sources it (extglob on, the concatenated files as one),
# HOOKS split like mkinitcpio's arrayize_config; the config's own output goes to
# stderr so that stdout carries only our NUL-separated report.
_EVAL_SCRIPT = r"""shopt -s extglob
. ./config >&2 || { builtin printf 'failed\0%d\0' "$?"; exit 97; }
builtin printf 'state\0'
builtin declare -p
builtin declare -f
builtin shopt -p
builtin set +o
builtin printf '\0%s\0' "${HOOKS@a}"
builtin set -f
[[ ${HOOKS@a} == *[aA]* ]] || IFS=' ' builtin read -r -a HOOKS <<<"$HOOKS"
(( ${#HOOKS[@]} )) && builtin printf '%s\0' "${HOOKS[@]}"
builtin printf 'end\0'
"""

# Variables whose value bash itself changes from run to run or that describe
# our evaluation rather than the configuration.
_VOLATILE = frozenset(
    {
        *("BASHPID", "BASH_ARGC", "BASH_ARGV", "BASH_COMMAND", "BASH_EXECUTION_STRING"),
        *("BASH_LINENO", "BASH_SOURCE", "BASH_SUBSHELL", "EPOCHREALTIME", "EPOCHSECONDS"),
        *("FUNCNAME", "HISTCMD", "LINENO", "OLDPWD", "PPID", "PWD", "RANDOM", "SECONDS"),
        *("SRANDOM", "_", "HOOKS"),
    }
)
_DECLARE_LINE = re.compile(r"declare -[-a-zA-Z]* ([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Evaluation:
    hooks: tuple[str, ...]
    attributes: str  # bash's ${HOOKS@a}: "a" for an array, "" for a string
    state: str  # every other variable, function and option, for comparison


@functools.cache
def _no_network() -> tuple[str, ...]:
    """A command prefix that cuts the evaluation off the network, where the system allows it.

    mkinitcpio sources the same files as root on every kernel update, so this is
    defence in depth rather than a boundary: a configuration that reaches out
    to the network gets nowhere when the editor sources it.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    prefix = (unshare, "--net", "--map-root-user")
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else ()


def evaluate(files: Sequence[bytes]) -> Evaluation:
    """Source the configuration with real bash in a clean environment, off the network."""
    bash = shutil.which("bash") or "/bin/bash"
    with tempfile.TemporaryDirectory(prefix="iscsi-hookgen-eval.") as tmp:
        Path(tmp, "config").write_bytes(b"".join(files))
        try:
            proc = subprocess.run(
                [*_no_network(), bash, "--norc", "--noprofile", "-c", _EVAL_SCRIPT, "bash"],
                cwd=tmp,
                env={},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_EVAL_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise ConfEditError(
                f"bash did not finish sourcing the configuration in {_EVAL_TIMEOUT:.0f} s; "
                "nothing was written"
            ) from None
    parts = proc.stdout.split(b"\0")
    if proc.returncode != 0 or len(parts) < 4 or parts[0] != b"state" or parts[-2] != b"end":
        if proc.returncode == 97:
            status = parts[1].decode() if parts[0] == b"failed" and len(parts) > 1 else "?"
            detail = _last_line(proc.stderr) or f"its last command failed with status {status}"
            raise EvaluationError(
                f"bash cannot source the configuration ({detail}), so mkinitcpio cannot either"
            )
        raise EvaluationError(
            f"sourcing the configuration ends the shell (exit {proc.returncode}), so "
            "mkinitcpio would stop there too"
        )
    text = [p.decode("latin-1") for p in parts]
    return Evaluation(hooks=tuple(text[3:-2]), attributes=text[2], state=_stable_state(text[1]))


def _map_bash_lines(message: str, config: ConfigSet) -> str:
    """bash numbers the lines of the concatenation; name the file and its own line."""
    starts = []
    line = 1
    for f in config.files:
        starts.append(line)
        line += f.data.count(b"\n")

    def one(m: re.Match[str]) -> str:
        n = int(m.group(1))
        # a joined line starts in the earlier file
        k = next(
            (i for i, f in enumerate(config.files) if n <= starts[i] + f.data.count(b"\n")),
            len(starts) - 1,
        )
        return f"{config.files[k].path} line {n - starts[k] + 1}:"

    return re.sub(r"\bline (\d+):", one, message)


def _newline_hint(config: ConfigSet) -> str:
    for f, nxt in zip(config.files, config.files[1:], strict=False):
        if f.data and not f.data.endswith(b"\n"):
            return (
                f" ({f.path} has no final newline, so mkinitcpio joins its last line "
                f"with the first line of {nxt.path})"
            )
    return ""


def _last_line(data: bytes) -> str:
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].replace("./config: ", "") if lines else ""


def _stable_state(state: str) -> str:
    kept = []
    for line in state.splitlines():
        m = _DECLARE_LINE.match(line)
        if m and m.group(1) in _VOLATILE:
            continue
        kept.append(line)
    return "\n".join(kept)


# --- what the files say -------------------------------------------------------


@dataclass(frozen=True)
class HookItem:
    name: str
    statement: int  # index into Analysis.statements
    start: int  # offsets in the concatenated text
    end: int
    quote: str  # "", "'" or '"': how the item is written


@dataclass(frozen=True)
class HooksStatement:
    index: int
    file: int  # index into ConfigSet.files
    start: int
    end: int
    append: bool  # HOOKS+=
    is_array: bool
    value_start: int  # just after = or +=
    open_end: int  # just after "(" or the opening quote
    close: int  # at ")" or the closing quote
    items: tuple[HookItem, ...]
    problem: str | None  # why the editor cannot use this statement


@dataclass(frozen=True)
class Analysis:
    config: ConfigSet
    text: str  # the files concatenated, latin-1
    offsets: tuple[int, ...]  # where each file starts in text
    statements: tuple[HooksStatement, ...]
    chain: tuple[int, ...]  # the statements that build the effective HOOKS
    items: tuple[HookItem, ...]  # the effective HOOKS as modelled
    evaluation: Evaluation
    problem: str | None  # why it cannot be edited, if it cannot

    @property
    def hooks(self) -> tuple[str, ...]:
        return self.evaluation.hooks

    def file_of(self, offset: int) -> int:
        index = 0
        for i, start in enumerate(self.offsets):
            if start <= offset:
                index = i
        return index

    def where(self, offset: int) -> str:
        f = self.file_of(offset)
        local = offset - self.offsets[f]
        line = self.text.count("\n", self.offsets[f], self.offsets[f] + local) + 1
        return f"{self.config.files[f].path}:{line}"

    def deciding_files(self) -> tuple[Path, ...]:
        seen: list[Path] = []
        for i in self.chain:
            path = self.config.files[self.statements[i].file].path
            if path not in seen:
                seen.append(path)
        return tuple(seen)

    @property
    def kind(self) -> ImageKind:
        return ImageKind.SYSTEMD if "systemd" in self.hooks else ImageKind.BUSYBOX


def analyse(config: ConfigSet) -> Analysis:
    """Evaluate with bash and model the HOOKS statements; say if it cannot be edited."""
    try:
        evaluation = evaluate([f.data for f in config.files])
    except EvaluationError as e:
        raise EvaluationError(
            f"{_map_bash_lines(str(e), config)}{_newline_hint(config)}; fix it first, "
            "nothing was written"
        ) from None
    offsets: list[int] = []
    pos = 0
    for f in config.files:
        offsets.append(pos)
        pos += len(f.data)
    text = b"".join(f.data for f in config.files).decode("latin-1")
    probe = Analysis(config, text, tuple(offsets), (), (), (), evaluation, None)
    try:
        statements, references = _find_statements(text, probe)
    except LexError as e:
        if _HOOKS_REFERENCE.search(text) is not None:
            why = f"cannot follow the shell syntax at {probe.where(e.offset)} ({e.reason})"
            return Analysis(config, text, tuple(offsets), (), (), (), evaluation, why)
        statements, references = [], []
    problem: str | None = None
    if references:
        problem = f"HOOKS is used at {probe.where(references[0])} in a way the editor cannot follow"
    bad = next((s for s in statements if s.problem), None)
    if problem is None and bad is not None:
        problem = f"the HOOKS statement at {probe.where(bad.start)} {bad.problem}"
    chain: list[int] = []
    items: list[HookItem] = []
    if problem is None:
        problem = _model(statements, chain, items, probe)
    if problem is None and not statements:
        problem = "the configuration has no HOOKS statement"
    if problem is None and tuple(i.name for i in items) != evaluation.hooks:
        problem = (
            f"bash reads HOOKS as ({' '.join(evaluation.hooks)}) but the editor reads "
            f"({' '.join(i.name for i in items)}) from the files"
        )
    if problem is None:
        problem = next(filter(None, (_name_problem(n) for n in evaluation.hooks)), None)
    if problem is not None:
        problem += _newline_hint(config)
    return Analysis(
        config,
        text,
        tuple(offsets),
        tuple(statements),
        tuple(chain),
        tuple(items),
        evaluation,
        problem,
    )


def _model(
    statements: list[HooksStatement],
    chain: list[int],
    items: list[HookItem],
    probe: Analysis,
) -> str | None:
    """Replay the statements as bash would; None when the model is complete."""
    state = "unset"
    for s in statements:
        where = probe.where(s.start)
        if s.is_array:
            if s.append and state == "string" and len(items) != 1:
                return (
                    f"HOOKS+=(...) at {where} appends to a legacy string that is not one "
                    "hook name: bash keeps the whole string as the first item"
                )
            if not s.append:
                chain.clear()
                items.clear()
            chain.append(s.index)
            items.extend(s.items)
            state = "array"
        else:
            if state == "array":
                return (
                    f"the string assignment at {where} comes after HOOKS became an array: "
                    "bash replaces only its first element, so mkinitcpio would look for one "
                    "hook named after the whole string; write it as HOOKS=(...)"
                )
            if s.append:
                return f"appending to a legacy HOOKS string (at {where}) is not supported"
            chain[:] = [s.index]
            items[:] = list(s.items)
            state = "string"
    return None


def _find_statements(text: str, probe: Analysis) -> tuple[list[HooksStatement], list[int]]:
    tokens = tokenize(text)
    statements: list[HooksStatement] = []
    references: list[int] = []
    for cmd in _commands(tokens):
        for tok in cmd.other:
            if tok.kind is TokenKind.WORD and _HOOKS_REFERENCE.search(tok.text):
                references.append(tok.start)
        for a in cmd.assignments:
            if a.name != "HOOKS":
                values = [a.word] if a.word is not None else list(a.items)
                if any(v is not None and _HOOKS_REFERENCE.search(v.text) for v in values) or (
                    _HOOKS_REFERENCE.search(a.name)
                ):
                    references.append(a.start)
                continue
            statements.append(_statement(a, cmd, len(statements), text, probe))
    return statements, references


@dataclass
class _Assign:
    name: str
    append: bool
    start: int
    end: int
    word: Token | None = None  # scalar value: the whole NAME=value word
    open_end: int = 0
    close: int = 0
    items: list[Token] = field(default_factory=list)


@dataclass
class _Command:
    depth: int
    before: str  # the separator before the command
    after: str = ""
    assignments: list[_Assign] = field(default_factory=list)
    other: list[Token] = field(default_factory=list)


_OPENERS = {"if": "fi", "while": "done", "until": "done", "for": "done", "select": "done"}
_OPENERS |= {"case": "esac", "{": "}"}
_CLOSERS = {"fi", "done", "esac", "}"}
_CONTINUERS = {"then", "do", "else", "elif", "!", "in"}


def _commands(tokens: list[Token]) -> list[_Command]:
    """Group tokens into simple commands, noting how deep in compound commands each is."""
    commands: list[_Command] = []
    stack: list[str] = []
    cmd: _Command | None = None
    before = "start"
    i = 0

    def finish(sep: str) -> None:
        nonlocal cmd, before
        if cmd is not None:
            cmd.after = sep
            commands.append(cmd)
            cmd = None
        before = sep

    while i < len(tokens):
        t = tokens[i]
        if t.kind in (TokenKind.COMMENT, TokenKind.HEREDOC):
            i += 1
            continue
        if t.kind is TokenKind.NEWLINE:
            finish("\n")
            i += 1
            continue
        if t.kind is TokenKind.OPERATOR:
            op = t.text
            if op == "(" and cmd is not None:
                # NAME ( ) starts a function definition; its body is a compound command
                if i + 1 < len(tokens) and tokens[i + 1].text == ")":
                    finish("function")
                    i += 2
                    continue
                raise LexError(t.start, "unexpected '('")
            if op == "(":
                if not (stack and stack[-1] == "case"):
                    stack.append("(")
                before = "("
            elif op == ")":
                finish(")")
                if stack and stack[-1] == "(":
                    stack.pop()
                elif not (stack and stack[-1] == "case"):
                    raise LexError(t.start, "unbalanced ')'")
            elif op in (";", "&", "&&", "||", "|", "|&", ";;", ";&", ";;&"):
                finish(op)
            else:  # a redirection: it belongs to the current command
                if cmd is None:
                    cmd = _Command(len(stack), before)
                cmd.other.append(t)
            i += 1
            continue
        # a word
        if cmd is None:
            w = t.text
            if w in _OPENERS:
                stack.append(w)
                before = w
                i += 1
                continue
            if w in _CLOSERS:
                expected = {"fi": ("if",), "esac": ("case",), "}": ("{",)}.get(
                    w, ("while", "until", "for", "select")
                )
                if not stack or stack[-1] not in expected:
                    raise LexError(t.start, f"unbalanced {w!r}")
                stack.pop()
                before = w
                i += 1
                continue
            if w in _CONTINUERS:
                before = w
                i += 1
                continue
            if w == "function":
                i += 2  # the name; the body is a compound command
                if i + 1 < len(tokens) and tokens[i].text == "(" and tokens[i + 1].text == ")":
                    i += 2
                before = "function"
                continue
            cmd = _Command(len(stack), before)
            if w == "[[":
                while i < len(tokens) and tokens[i].text != "]]":
                    if tokens[i].kind is not TokenKind.NEWLINE:
                        cmd.other.append(tokens[i])
                    i += 1
                i += 1
                continue
        m = _ASSIGNMENT.match(t.text)
        if m is None:
            cmd.other.append(t)
            i += 1
            continue
        a = _Assign(m.group(1), m.group(2) == "+", t.start, t.end)
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if (
            m.end() == len(t.text)
            and nxt is not None
            and nxt.kind is TokenKind.OPERATOR
            and nxt.text == "("
            and nxt.start == t.end
        ):
            a.open_end = nxt.end
            i += 2
            while i < len(tokens) and not (
                tokens[i].kind is TokenKind.OPERATOR and tokens[i].text == ")"
            ):
                if tokens[i].kind is TokenKind.OPERATOR:
                    raise LexError(tokens[i].start, "unexpected operator in an array")
                if tokens[i].kind is TokenKind.WORD:
                    a.items.append(tokens[i])
                i += 1
            if i >= len(tokens):
                raise LexError(t.start, "array without its closing ')'")
            a.close = tokens[i].start
            a.end = tokens[i].end
        else:
            a.word = t
        if cmd.other:
            # an argument of a command such as declare or export, not an assignment
            cmd.other += [t, *a.items]
        else:
            cmd.assignments.append(a)
        i += 1
    finish("eof")
    if stack:
        raise LexError(len(tokens) and tokens[-1].end, f"{stack[-1]!r} without its end")
    return commands


def _statement(a: _Assign, cmd: _Command, index: int, text: str, probe: Analysis) -> HooksStatement:
    problem: str | None = None
    if cmd.depth > 0:
        problem = "is inside an if, loop, function or group: it may or may not run"
    elif cmd.before not in ("start", "\n", ";") or cmd.after not in ("\n", ";", "eof"):
        problem = "is part of a &&, ||, | or & list: it may not take effect"
    elif cmd.other:
        problem = "is a prefix of a command: it sets HOOKS for that command only"
    elif probe.file_of(a.start) != probe.file_of(max(a.end - 1, a.start)):
        problem = "runs across the end of a file that lacks a final newline"
    items: list[HookItem] = []
    is_array = a.word is None
    open_end, close = a.open_end, a.close
    if is_array:
        for tok in a.items:
            if tok.literal is None:
                problem = problem or (
                    f"has {tok.text!r}, which bash expands (a substitution, variable or glob)"
                )
                continue
            q = tok.text[0] if tok.text[0] in "'\"" and tok.text[-1] == tok.text[0] else ""
            if len(tok.text) < 2 or tok.text[1:-1] != tok.literal:
                q = ""
            items.append(HookItem(tok.literal, index, tok.start, tok.end, q))
    else:
        assert a.word is not None
        value_start = a.word.start + len(a.name) + (2 if a.append else 1)
        raw = text[value_start : a.word.end]
        if a.word.literal is None:
            problem = problem or f"has {raw!r}, which bash expands (a substitution or variable)"
            open_end = close = value_start
        elif len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" and _plain(raw[1:-1]):
            open_end, close = value_start + 1, a.word.end - 1
        elif _plain(raw) and "'" not in raw and '"' not in raw:
            open_end, close = value_start, a.word.end
        else:
            problem = problem or "mixes quoting styles in a way the editor does not rewrite"
            open_end = close = value_start
        content = text[open_end:close]
        if "\n" in content:
            problem = problem or "is a string over several lines: mkinitcpio reads only the first"
        for m in re.finditer(r"[^ ]+", content):
            items.append(HookItem(m.group(), index, open_end + m.start(), open_end + m.end(), ""))
    return HooksStatement(
        index=index,
        file=probe.file_of(a.start),
        start=a.start,
        end=a.end,
        append=a.append,
        is_array=is_array,
        value_start=a.start + len(a.name) + (2 if a.append else 1),
        open_end=open_end,
        close=close,
        items=tuple(items),
        problem=problem,
    )


def _plain(s: str) -> bool:
    return not any(c in s for c in "\\\"'$`")


# --- placing hooks ------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    item: HookItem | None  # None: inserted by us


def _satisfied(entries: list[_Entry], index: int, rule: OrderRule) -> bool:
    for j, e in enumerate(entries):
        if j < index and e.name in rule.before:
            return False
        if j > index and e.name in rule.after:
            return False
    return True


def _place(entries: list[_Entry], rule: OrderRule, notes: list[str]) -> list[_Entry]:
    occurrences = [i for i, e in enumerate(entries) if e.name == rule.hook]
    for n, keep in enumerate(occurrences):
        rest = [e for i, e in enumerate(entries) if i == keep or e.name != rule.hook]
        if _satisfied(rest, keep - n, rule):
            if len(occurrences) > 1:
                notes.append(f"removed {len(occurrences) - 1} duplicate {rule.hook!r}")
            return rest
    rest = [e for e in entries if e.name != rule.hook]
    pos = next((i for i, e in enumerate(rest) if e.name in rule.before), len(rest))
    late = [e.name for e in rest[pos:] if e.name in rule.after]
    if late:
        first = rest[pos].name
        raise ConfEditError(
            f"cannot place {rule.hook!r}: it must come after {late[0]!r} and before {first!r}, "
            f"but HOOKS has {first!r} before {late[0]!r}; fix that order first, nothing was written"
        )
    where = f"before {rest[pos].name!r}" if pos < len(rest) else "at the end"
    if occurrences:
        was = entries[occurrences[0] - 1].name if occurrences[0] > 0 else None
        old = f"after {was!r}" if was else "at the start"
        notes.append(f"moved {rule.hook!r} from {old} to {where}")
    else:
        notes.append(f"added {rule.hook!r} {where}")
    return [*rest[:pos], _Entry(rule.hook, None), *rest[pos:]]


def rules_for(analysis: Analysis) -> tuple[OrderRule, ...]:
    rules = ORDERING.get(analysis.kind)
    if rules is None:
        files = ", ".join(str(p) for p in analysis.deciding_files()) or "the configuration"
        raise SystemdImageError(
            f"HOOKS in {files} contains 'systemd': the initramfs is systemd-based, where no "
            "busybox runtime hook runs (the iscsi hook logs in from its own unit there), and "
            "this editor does not place hooks in systemd-based images yet; nothing was "
            "written: put 'iscsi' into HOOKS by hand after 'systemd' and before 'block' "
            "(and before sd-encrypt, lvm2, filesystems), or switch to the busybox-based "
            "image ('udev' for 'systemd', 'keymap consolefont' for 'sd-vconsole', 'encrypt' "
            "for 'sd-encrypt') and run again"
        )
    return rules


def _rule(rules: tuple[OrderRule, ...], name: str) -> OrderRule:
    for r in rules:
        if r.hook == name:
            return r
    known = ", ".join(r.hook for r in rules)
    raise ConfEditError(
        f"no ordering rule for hook {name!r}: the editor places only these hooks: {known}; "
        "nothing was written"
    )


def check_order(analysis: Analysis, names: Sequence[str]) -> list[str]:
    """What is wrong with the placement of `names`; empty when all is right."""
    _require_editable(analysis, need_model=False)
    rules = rules_for(analysis)
    entries = [_Entry(n, None) for n in analysis.hooks]
    problems = []
    for name in names:
        rule = _rule(rules, name)
        occurrences = [i for i, e in enumerate(entries) if e.name == name]
        if not occurrences:
            problems.append(f"{name!r} is missing")
        elif len(occurrences) > 1:
            problems.append(f"{name!r} appears {len(occurrences)} times")
        elif not _satisfied(entries, occurrences[0], rule):
            problems.append(_misplaced(entries, occurrences[0], rule))
    return problems


def _misplaced(entries: list[_Entry], index: int, rule: OrderRule) -> str:
    early = [e.name for e in entries[:index] if e.name in rule.before]
    if early:
        return f"{rule.hook!r} comes after {early[0]!r} but must come before it"
    late = [e.name for e in entries[index + 1 :] if e.name in rule.after]
    return f"{rule.hook!r} comes before {late[0]!r} but must come after it"


def _require_editable(analysis: Analysis, *, need_model: bool = True) -> None:
    if analysis.problem is None:
        return
    if (
        not need_model
        and analysis.evaluation.hooks
        and not any(_name_problem(n) for n in analysis.hooks)
    ):
        return
    raise ConfEditError(f"cannot edit HOOKS: {analysis.problem}; nothing was written")


# --- editing ------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str
    order: int = 1  # among edits at one offset: an opening quote first, a closing one last


@dataclass(frozen=True)
class Plan:
    analysis: Analysis
    after: tuple[str, ...]
    notes: tuple[str, ...]
    file: int | None  # the file that changes
    new_data: bytes | None


def plan_add(analysis: Analysis, names: Sequence[str]) -> Plan:
    """Place `names` by the ordering rules (table order), moving any that are misplaced."""
    _require_editable(analysis)
    rules = rules_for(analysis)
    wanted = {_rule(rules, n).hook for n in names}
    entries = [_Entry(i.name, i) for i in analysis.items]
    notes: list[str] = []
    for rule in rules:
        if rule.hook in wanted:
            entries = _place(entries, rule, notes)
    return _plan(analysis, entries, notes)


def plan_remove(analysis: Analysis, names: Sequence[str]) -> Plan:
    _require_editable(analysis)
    for n in names:
        if not valid_hook_name(n):
            raise ConfEditError(f"{n!r} is not a hook name")
    entries = [_Entry(i.name, i) for i in analysis.items]
    kept = [e for e in entries if e.name not in names]
    if not kept and entries:
        raise ConfEditError(
            "removing those hooks would leave HOOKS empty and mkinitcpio refuses that; "
            "nothing was written"
        )
    notes = [f"removed {n!r}" for n in names if any(e.name == n for e in entries)]
    return _plan(analysis, kept, notes)


def _plan(analysis: Analysis, entries: list[_Entry], notes: list[str]) -> Plan:
    after = tuple(e.name for e in entries)
    if after == analysis.hooks:
        return Plan(analysis, after, tuple(notes), None, None)
    edits = _edits(analysis, entries)
    files = {analysis.file_of(e.start) for e in edits}
    if len(files) > 1:
        paths = " and ".join(str(analysis.config.files[f].path) for f in sorted(files))
        raise ConfEditError(
            f"the change would touch both {paths}; the editor changes one file at a time: "
            f"make HOOKS read ({' '.join(after)}) by hand; nothing was written"
        )
    (f,) = files
    base = analysis.offsets[f]
    old = analysis.config.files[f].data.decode("latin-1")
    out: list[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: (e.start, e.order, e.end)):
        out.append(old[pos : e.start - base])
        out.append(e.text)
        pos = max(pos, e.end - base)
    out.append(old[pos:])
    return Plan(analysis, after, tuple(notes), f, "".join(out).encode("latin-1"))


def _edits(analysis: Analysis, entries: list[_Entry]) -> list[_Edit]:
    kept = {id(e.item) for e in entries if e.item is not None}
    edits: list[_Edit] = []
    for s in analysis.statements:
        run: list[HookItem] = []
        for item in (*s.items, None):
            if item is not None and id(item) not in kept and item in analysis.items:
                run.append(item)
                continue
            if run:
                edits.append(_removal(analysis, s, run[0], run[-1]))
                run = []
    index = 0
    while index < len(entries):
        if entries[index].item is not None:
            index += 1
            continue
        group: list[str] = []
        while index < len(entries) and entries[index].item is None:
            group.append(entries[index].name)
            index += 1
        anchor = entries[index].item if index < len(entries) else None
        if anchor is not None:
            edits.append(_insert_before(analysis, anchor, group))
        else:
            edits.append(_append(analysis, group, kept))
    for s in {analysis.statements[i.statement] for i in analysis.items} | {
        analysis.statements[analysis.chain[-1]]
    }:
        if not s.is_array and s.open_end == s.value_start and _touches(edits, s):
            # a bare legacy word (HOOKS=base) needs quotes once it holds a space
            edits += [_Edit(s.open_end, s.open_end, '"', 0), _Edit(s.close, s.close, '"', 2)]
    return edits


def _touches(edits: list[_Edit], s: HooksStatement) -> bool:
    return any(s.open_end <= e.start and e.end <= s.close and e.text for e in edits)


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, len(text) if line_end < 0 else line_end


def _starts_line(text: str, item: HookItem) -> bool:
    line_start, _ = _line_bounds(text, item.start, item.end)
    return text[line_start : item.start].strip(" \t") == ""


def _vertical(analysis: Analysis, s: HooksStatement) -> bool:
    """One item per line, as in `HOOKS=(\\n    base\\n    udev\\n)`."""
    if not s.is_array or not s.items:
        return False
    if len(s.items) == 1:
        return _starts_line(analysis.text, s.items[0])
    return all(_starts_line(analysis.text, i) for i in s.items[1:])


def _indent(text: str, item: HookItem) -> str:
    line_start, _ = _line_bounds(text, item.start, item.end)
    line = text[line_start : item.start]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _word(name: str, like: HookItem | None) -> str:
    q = like.quote if like is not None else ""
    return f"{q}{name}{q}"


def _removal(analysis: Analysis, s: HooksStatement, first: HookItem, last: HookItem) -> _Edit:
    """Remove a run of adjacent items with the blanks that separated them from the rest."""
    text = analysis.text
    line_start, _ = _line_bounds(text, first.start, first.end)
    _, line_end = _line_bounds(text, last.start, last.end)
    if (
        text[line_start : first.start].strip(" \t") == ""
        and text[last.end : line_end].strip(" \t") == ""
        and line_end < s.close
    ):
        return _Edit(line_start, line_end + 1, "")  # the items' own lines
    j = last.end
    while j < s.close and text[j] in " \t":
        j += 1
    if j > last.end and j < s.close and text[j] not in "\n#":
        return _Edit(first.start, j, "")  # the items and the blanks before the next one
    k = first.start
    while k > max(line_start, s.open_end) and text[k - 1] in " \t":
        k -= 1
    if k < first.start and k > max(line_start, s.open_end):
        return _Edit(k, last.end, "")  # the blanks after the previous item, and the items
    return _Edit(first.start, j, "")


def _insert_before(analysis: Analysis, anchor: HookItem, names: list[str]) -> _Edit:
    s = analysis.statements[anchor.statement]
    if s.is_array and _vertical(analysis, s) and _starts_line(analysis.text, anchor):
        indent = _indent(analysis.text, anchor)
        text = "".join(f"{_word(n, anchor)}\n{indent}" for n in names)
    else:
        text = "".join(f"{_word(n, anchor) if s.is_array else n} " for n in names)
    return _Edit(anchor.start, anchor.start, text)


def _append(analysis: Analysis, names: list[str], kept: set[int]) -> _Edit:
    s = analysis.statements[analysis.chain[-1]]
    text = analysis.text
    last = next((i for i in reversed(s.items) if id(i) in kept), None)
    if last is None:
        like = s.items[-1] if s.items else None
        words = [_word(n, like) if s.is_array else n for n in names]
        return _Edit(s.open_end, s.open_end, " ".join(words))
    words = [_word(n, last) if s.is_array else n for n in names]
    if _vertical(analysis, s):
        indent = _indent(text, last)
        pos = last.end
        _, line_end = _line_bounds(text, last.start, last.end)
        rest = text[last.end : min(line_end, s.close)]
        if rest.lstrip(" \t").startswith("#"):
            pos = min(line_end, s.close)
        return _Edit(pos, pos, "".join(f"\n{indent}{w}" for w in words))
    return _Edit(last.end, last.end, "".join(f" {w}" for w in words))


# --- verifying and writing ----------------------------------------------------


@dataclass(frozen=True)
class EditResult:
    changed: bool  # the configuration differs (or would, with dry_run) from before
    written: bool
    path: Path | None  # the file that changes
    backup: Path | None
    before: tuple[str, ...]
    after: tuple[str, ...]
    messages: tuple[str, ...]
    diff: str


def verify(plan: Plan) -> Analysis:
    """Re-evaluate the edited configuration: only HOOKS may change, and exactly as planned."""
    a = plan.analysis
    if plan.file is None or plan.new_data is None:
        return a
    files = list(a.config.files)
    old = files[plan.file]
    files[plan.file] = ConfigFile(old.path, plan.new_data, old.dropin)
    new = analyse(ConfigSet(tuple(files), a.config.explicit))
    if new.hooks != plan.after:
        raise ConfEditError(
            f"verification failed: after the edit bash reads HOOKS as ({' '.join(new.hooks)}) "
            f"instead of ({' '.join(plan.after)}); nothing was written"
        )
    if new.evaluation.state != a.evaluation.state:
        raise ConfEditError(
            "verification failed: the edit would change more than HOOKS; nothing was written"
        )
    if new.problem is not None:
        raise ConfEditError(
            f"verification failed: the edited file could not be read back ({new.problem}); "
            "nothing was written"
        )
    return new


def apply(plan: Plan, *, dry_run: bool) -> EditResult:
    a = plan.analysis
    notes = list(plan.notes)
    if plan.file is None or plan.new_data is None:
        notes.append(f"HOOKS is already right: ({' '.join(a.hooks)}); nothing to change")
        return EditResult(False, False, None, None, a.hooks, a.hooks, tuple(notes), "")
    verify(plan)
    cf = a.config.files[plan.file]
    diff = unified_diff(cf.path, cf.data, plan.new_data)
    notes.append(f"HOOKS becomes ({' '.join(plan.after)}) in {cf.path}")
    if dry_run:
        notes.append("dry run: nothing was written")
        return EditResult(True, False, cf.path, None, a.hooks, plan.after, tuple(notes), diff)
    _check_inputs_unchanged(a.config)
    backup = write_with_backup(cf.path, cf.data, plan.new_data)
    notes.append(f"previous content kept in {backup}")
    return EditResult(True, True, cf.path, backup, a.hooks, plan.after, tuple(notes), diff)


def unified_diff(path: Path, old: bytes, new: bytes) -> str:
    return "".join(
        difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True),
            new.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"{path}",
            tofile=f"{path}",
        )
    )


def _check_inputs_unchanged(config: ConfigSet) -> None:
    main = config.main.path
    if config.explicit:
        again = ConfigSet((ConfigFile(main, _read(main), dropin=False),), explicit=True)
    else:
        again = _reread(config)
    if again != config:
        raise ConfEditError(
            "the configuration changed on disk while it was being edited; nothing was "
            "written: run again"
        )


def _reread(config: ConfigSet) -> ConfigSet:
    main = config.main.path
    files = [ConfigFile(main, _read(main), dropin=False)]
    files += [ConfigFile(p, _read(p), dropin=True) for p in _dropins(Path(f"{main}.d"))]
    return ConfigSet(tuple(files), explicit=False)


def write_with_backup(path: Path, old: bytes, new: bytes) -> Path:
    """Keep `old` beside the real file, then replace the file; explain any failure."""
    target = resolve_target(path)
    backup = target.with_name(target.name + BACKUP_SUFFIX)
    try:
        st = target.stat()
        atomic_write(backup, old, like=st)
    except OSError as e:
        raise ConfEditError(
            f"cannot write the backup {backup}: {_reason(e)}; {path} is unchanged"
        ) from None
    try:
        atomic_write(path, new, expected=old)
    except ChangedOnDiskError:
        raise ConfEditError(
            f"{path} changed on disk while it was being edited; it was left as the other "
            "writer left it: run again"
        ) from None
    except OSError as e:
        raise ConfEditError(_failure(path, old, new, e)) from None
    return backup


def _reason(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    text = e.strerror or str(e)
    return f"{text} ({name})" if name else text


def _failure(path: Path, old: bytes, new: bytes, e: OSError) -> str:
    try:
        now = path.read_bytes()
    except OSError:
        now = None
    if now == old:
        state = f"{path} is unchanged"
    elif now == new:
        state = f"{path} holds the new content but may not survive a crash"
    else:
        state = f"{path} was changed by someone else meanwhile"
    return f"cannot write {path}: {_reason(e)}; {state}"


# --- the entry points ---------------------------------------------------------


def advisories(analysis: Analysis, *, root: Path) -> tuple[str, ...]:
    """Facts about the configuration that are easy to miss and change what mkinitcpio reads."""
    notes = []
    config = analysis.config
    for f, nxt in zip(config.files, config.files[1:], strict=False):
        if f.data and not f.data.endswith(b"\n"):
            notes.append(
                f"note: {f.path} has no final newline, so mkinitcpio reads its last line "
                f"joined with the first line of {nxt.path}"
            )
    dropdir = Path(f"{config.main.path}.d")
    if not config.explicit and dropdir.is_symlink() and dropdir.is_dir():
        notes.append(
            f"note: {dropdir} is a symlink, so mkinitcpio reads none of the drop-ins in it"
        )
    if not config.explicit:
        presets = root / "etc" / "mkinitcpio.d"
        for preset in sorted(presets.glob("*.preset")) if presets.is_dir() else []:
            try:
                lines = preset.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                m = re.match(r"\s*([A-Za-z0-9_]+)_config=(\S*)", line)
                if m and m.group(2) not in ("", '""', "''"):
                    notes.append(
                        f"note: {preset} sets {m.group(1)}_config={m.group(2)}: for that "
                        "image mkinitcpio reads only that file and ignores the drop-ins"
                    )
    return tuple(notes)


def load(*, root: Path, config: Path | None) -> Analysis:
    return analyse(read_config(root=root, config=config))


def add_hooks(
    *, root: Path, config: Path | None, names: Sequence[str], dry_run: bool
) -> EditResult:
    analysis = load(root=root, config=config)
    return _with_notes(apply(plan_add(analysis, names), dry_run=dry_run), analysis, root)


def remove_hooks(
    *, root: Path, config: Path | None, names: Sequence[str], dry_run: bool
) -> EditResult:
    analysis = load(root=root, config=config)
    return _with_notes(apply(plan_remove(analysis, names), dry_run=dry_run), analysis, root)


def _with_notes(result: EditResult, analysis: Analysis, root: Path) -> EditResult:
    notes = advisories(analysis, root=root)
    return replace(result, messages=result.messages + notes) if notes else result


def iscsi_hook_names(*, with_net: bool) -> tuple[str, ...]:
    return ("net", "iscsi") if with_net else ("iscsi",)


def ensure_iscsi_hooks(
    *, root: Path, config: Path | None, with_net: bool, dry_run: bool
) -> EditResult:
    """The main flow's edit: iscsi (and net for a static portal) where they belong.

    net is added only where the image kind has a rule for it: a busybox hook that
    a systemd-based image would not run is never added there.
    """
    analysis = load(root=root, config=config)
    _require_editable(analysis)
    rules = {r.hook for r in rules_for(analysis)}
    names = [n for n in iscsi_hook_names(with_net=with_net) if n in rules]
    return _with_notes(apply(plan_add(analysis, names), dry_run=dry_run), analysis, root)


def describe_manual_change(*, root: Path, config: Path | None, with_net: bool) -> str:
    """For --no-edit: the change the user should make, as text to print."""
    names = iscsi_hook_names(with_net=with_net)
    try:
        analysis = load(root=root, config=config)
        plan = plan_add(analysis, names)
    except SystemdImageError as e:
        return f"Not editing: {e}\n"
    except ConfEditError as e:
        wanted = " and ".join(repr(n) for n in names)
        rules = ORDERING[ImageKind.BUSYBOX]
        return (
            f"Not editing ({e}). Put {wanted} into HOOKS by hand: "
            + "; ".join(_explain(r) for r in rules if r.hook in names)
            + "\n"
        )
    if plan.file is None:
        return f"HOOKS is already right: ({' '.join(analysis.hooks)}); nothing to change\n"
    verify(plan)
    cf = analysis.config.files[plan.file]
    return f"Not editing. Make HOOKS read ({' '.join(plan.after)}), in {cf.path}:\n" + unified_diff(
        cf.path, cf.data, plan.new_data or b""
    )


def _explain(rule: OrderRule) -> str:
    return (
        f"{rule.hook!r} after {', '.join(sorted(rule.after))} and before the first of "
        f"{', '.join(sorted(rule.before))}"
    )
