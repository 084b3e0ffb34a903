"""The iscsi-hookgen(1) manual page, rendered from the command-line parser.

`python -m iscsi_hookgen.manpage` prints the page; the PKGBUILD runs it at build time,
so the installed page lists exactly the options the installed program accepts.
"""

import sys

from iscsi_hookgen import __version__
from iscsi_hookgen.clispec import Argument, Command, program
from iscsi_hookgen.render import CHAP_FILE, INSTALL_HOOK, RUNTIME_HOOK

# What the parser cannot say: prose for the sections after the options.
EXIT_STATUS = (
    ("0", "Success, including a --dry-run that found nothing wrong."),
    (
        "1",
        "A file could not be read or written; or, for hooks check, HOOKS lacks a hook "
        "or has it in the wrong place.",
    ),
    (
        "2",
        "Bad input: an option value, a missing option or a combination that cannot "
        "work. One line on standard error names the value and what is accepted; "
        "nothing is written.",
    ),
)
FILES = (
    (f"/etc/initcpio/{INSTALL_HOOK}",
     "Build hook written by iscsi-hookgen; mkinitcpio prefers it to the packaged one."),
    (f"/etc/initcpio/{RUNTIME_HOOK}",
     "Runtime hook written by iscsi-hookgen, run by the image's init before the root "
     "disk is looked for."),
    (f"/etc/initcpio/{CHAP_FILE}",
     "CHAP credentials (mode 0600), copied into the image (which mkinitcpio writes "
     "0600); never on the kernel command line."),
    (f"/usr/lib/initcpio/{INSTALL_HOOK}, /usr/lib/initcpio/{RUNTIME_HOOK}",
     "The packaged hooks: every value comes from the kernel command line."),
    ("/etc/mkinitcpio.conf, /etc/mkinitcpio.conf.d/*.conf",
     "The HOOKS array that must list iscsi (after net in static-portal mode, before "
     "block)."),
    ("/etc/iscsi/initiatorname.iscsi",
     "The initiator name used when --initiator is not given."),
)  # fmt: skip
# Prose sections after DESCRIPTION: title, then paragraphs.
NOTES = (
    ("IMAGE KINDS", (
        "Busybox-based images (HOOKS with udev, e.g. base udev ... net iscsi block "
        "filesystems fsck) run the iscsi runtime hook from mkinitcpio's init. Static-portal "
        "mode needs the net hook (mkinitcpio-nfs-utils) before iscsi and ip= on the kernel "
        "command line.",
        "Systemd-based images (HOOKS with systemd before iscsi, mkinitcpio's default since "
        "v40) run no runtime hook. There the build hook adds iscsi-hookgen-login.service, "
        "which runs the same login routine from /hooks/iscsi, a generator that orders the "
        "root device after it, and the busybox applets it needs. In static-portal mode it "
        "applies ip= itself; no net hook is wanted there.",
    )),
    ("KERNEL PARAMETERS", (
        "The runtime hook reads netroot=iscsi:..., rd.iscsi.initiator=, rd.iscsi.firmware=1, "
        "rd.iscsi.param=NAME=VALUE (repeatable), rd.iscsi.login_retry_max=, "
        "rd.iscsi.retries=, rd.iscsi.retry_delay=, rd.iscsi.timeout=, "
        "rd.iscsi.disk_timeout=, rd.iscsi.nic_timeout=, ip= and the Debian forms "
        "iscsi_initiator=, iscsi_target_name=, iscsi_target_ip=, iscsi_target_port=, "
        "iscsi_target_group=, iscsi_username=, iscsi_password=, iscsi_in_username=, "
        "iscsi_in_password= and iscsi_auto; quiet shortens its messages. They override the "
        "generated values, so a boot can be mended from the boot loader. "
        "mkinitcpio -H iscsi describes each, with their precedence.",
    )),
)  # fmt: skip
SEE_ALSO = ("mkinitcpio(8)", "mkinitcpio.conf(5)", "iscsistart(8)", "iscsiadm(8)", "iscsid(8)")


def escape(text: str) -> str:
    """Text for a roff line: backslashes and hyphens literal, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _bold(text: str) -> str:
    return f"\\fB{escape(text)}\\fR"


def _italic(text: str) -> str:
    return f"\\fI{escape(text)}\\fR"


def _usage(argument: Argument) -> str:
    """`-P, --param NAME=VALUE` in roff fonts."""
    head = ", ".join(_bold(f) for f in argument.flags) if argument.flags else ""
    if argument.metavar is None:
        return head
    value = _italic(argument.metavar)
    return f"{head} {value}" if head else value


def _positional(argument: Argument) -> str:
    """`ACTION`, `{show|add}`, `[NAME]...` as argparse's usage line has them."""
    if argument.choices:
        text = "{" + "|".join(_bold(c) for c in argument.choices) + "}"
    else:
        text = _usage(argument)
    if argument.optional:
        text = f"[{text}]"
    return text + "..." if argument.repeatable else text


def _synopsis(command: Command) -> list[str]:
    lines = [".PP", f"\\fB{escape(' '.join(command.words))}\\fR"]
    by_flag = {a.flags[0]: a for a in command.options}
    in_group = {flag for group in command.exclusive for flag in group}
    for group in command.exclusive:
        lines.append("[" + " | ".join(_usage(by_flag[f]) for f in group) + "]")
    if any(a.flags[0] not in in_group for a in command.options):
        lines.append(f"[{_italic('OPTION')}]...")
    # Subcommands get synopsis lines of their own.
    lines += [_positional(a) for a in command.positionals]
    return lines


def _item(argument: Argument) -> list[str]:
    """A tagged paragraph: the option or positional, then what it does."""
    tag = _usage(argument) if argument.flags else _positional(argument)
    text = argument.help
    if argument.choices and argument.flags:
        text += f" One of: {', '.join(argument.choices)}."
    return [".TP", tag, escape(text)]


def _arguments(command: Command, heading: str) -> list[str]:
    lines: list[str] = []
    for group in command.groups:
        lines.append(f'{heading} "{escape(group.title.capitalize())}"')
        for argument in group.arguments:
            lines += _item(argument)
    return lines


def render(top: Command) -> str:
    name = top.words[0]
    summary = top.description.split(". ")[0].rstrip(".")
    lines = [
        '.\\" SPDX-License-Identifier: MIT',
        f'.\\" Rendered by "python -m iscsi_hookgen.manpage" from the {name} parser.',
        f'.TH {escape(name.upper())} 1 "" "{escape(name)} {__version__}" "User Commands"',
        # Option names and paths read better unbroken and with a ragged right edge.
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{escape(name)} \\- {escape(summary[:1].lower() + summary[1:])}",
        ".SH SYNOPSIS",
    ]
    for command in top.walk():
        lines += _synopsis(command)
    lines += [".SH DESCRIPTION", escape(top.description)]
    if top.epilog:
        lines += [".PP", escape(top.epilog)]
    for title, paragraphs in NOTES:
        lines.append(f".SH {title}")
        for index, paragraph in enumerate(paragraphs):
            lines += ([".PP"] if index else []) + [escape(paragraph)]
    lines.append(".SH OPTIONS")
    lines += _arguments(top, ".SS")
    if len(top.walk()) > 1:
        lines.append(".SH COMMANDS")
        for command in top.walk()[1:]:
            lines += [f'.SS "{escape(" ".join(command.words))}"']
            lines.append(escape(command.description or command.summary))
            for argument in command.arguments:
                lines += _item(argument)
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        lines += [".TP", _bold(code), escape(meaning)]
    lines.append(".SH FILES")
    for path, meaning in FILES:
        lines += [".TP", _italic(path), escape(meaning)]
    lines += [
        ".SH SEE ALSO",
        ",\n".join(_bold(p.split("(")[0]) + "(" + p.split("(")[1] for p in SEE_ALSO),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render(program()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
