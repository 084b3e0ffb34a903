"""Split bash source into the tokens the HOOKS editor needs, with their byte offsets.

This is not a bash parser. It knows enough of bash's quoting and expansion
syntax to tell where each word, operator and comment starts and ends, and
whether a word is a plain literal (its value known without running anything).
Anything it cannot follow is reported, and the editor then refuses rather than
guess: the final judge of what a configuration means is always bash itself.

Text is handled as latin-1 so that one character is one byte: offsets are byte
offsets and every byte of the user's file round-trips unchanged.
"""

import enum
from dataclasses import dataclass


class TokenKind(enum.Enum):
    WORD = "word"
    OPERATOR = "operator"
    NEWLINE = "newline"
    COMMENT = "comment"
    HEREDOC = "heredoc"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    start: int
    end: int
    text: str
    # The value of a WORD after quote removal, or None when bash would expand
    # something in it (parameters, commands, globs, braces, tildes).
    literal: str | None = None


class LexError(ValueError):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


_OPERATORS = (
    "&>>", ";;&", "<<<", "<<-",
    "&&", "||", ";;", ";&", "|&", "<<", ">>", "<&", ">&", "<>", ">|", "&>",
    ";", "&", "|", "(", ")", "<", ">",
)  # fmt: skip
_WORD_BREAK = frozenset(" \t\n;&|()<>")
# Characters that make bash expand an unquoted word in an array assignment.
_GLOB_CHARS = frozenset("*?[{~")
_EXTGLOB_PREFIX = frozenset("@!+*?")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pending_heredocs: list[tuple[str, bool]] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "\\" and text.startswith("\\\n", i):
            i += 2  # a line continuation between words is just a blank
            continue
        if c == "\n":
            tokens.append(Token(TokenKind.NEWLINE, i, i + 1, "\n"))
            i += 1
            if pending_heredocs:
                i = _skip_heredocs(text, i, pending_heredocs, tokens)
                pending_heredocs = []
            continue
        if c == "#":  # at a token boundary, so it starts a comment
            end = text.find("\n", i)
            end = n if end < 0 else end
            tokens.append(Token(TokenKind.COMMENT, i, end, text[i:end]))
            i = end
            continue
        if c in "<>" and text.startswith("(", i + 1):
            end = _skip_balanced(text, i + 2, ")")  # process substitution
            tokens.append(Token(TokenKind.WORD, i, end, text[i:end], None))
            i = end
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token(TokenKind.OPERATOR, i, i + len(op), op))
            i += len(op)
            if op in ("<<", "<<-"):
                delim, i = _heredoc_delimiter(text, i)
                pending_heredocs.append((delim, op == "<<-"))
            continue
        start = i
        i, literal = _scan_word(text, i)
        tokens.append(Token(TokenKind.WORD, start, i, text[start:i], literal))
    if pending_heredocs:
        raise LexError(n, "here-document without its end")
    return tokens


def _scan_word(text: str, i: int) -> tuple[int, str | None]:
    n = len(text)
    value: list[str] = []
    plain = True
    while i < n:
        c = text[i]
        if c in _WORD_BREAK:
            break
        if c == "\\":
            if i + 1 >= n:
                i += 1
                value.append("\\")
                continue
            if text[i + 1] != "\n":
                value.append(text[i + 1])
            i += 2
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise LexError(i, "unterminated single quote")
            value.append(text[i + 1 : end])
            i = end + 1
        elif c == '"':
            i, part = _scan_double_quoted(text, i + 1)
            if part is None:
                plain = False
            else:
                value.append(part)
        elif c == "$" and i + 1 < n and text[i + 1] in "'\"({":
            plain = False
            nxt = text[i + 1]
            if nxt == "'":
                i = _skip_ansi_c(text, i + 2)
            elif nxt == '"':
                i, _ = _scan_double_quoted(text, i + 2)
            elif nxt == "(":
                i = _skip_balanced(text, i + 2, ")")
            else:
                i = _skip_balanced(text, i + 2, "}")
        elif c == "$":
            plain = False
            i += 1
        elif c == "`":
            plain = False
            i = _skip_backquote(text, i + 1)
        elif c in _EXTGLOB_PREFIX and text.startswith("(", i + 1):
            plain = False
            i = _skip_balanced(text, i + 2, ")")
        else:
            if c in _GLOB_CHARS:
                plain = False
            value.append(c)
            i += 1
    return i, ("".join(value) if plain else None)


def _scan_double_quoted(text: str, i: int) -> tuple[int, str | None]:
    """Scan from just after an opening double quote; return the end and the value."""
    n = len(text)
    value: list[str] = []
    plain = True
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1, ("".join(value) if plain else None)
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in '$`"\\':
                value.append(nxt)
            elif nxt != "\n":
                value.append(c + nxt)
            i += 2
        elif c == "$" and i + 1 < n and text[i + 1] in "({":
            plain = False
            i = _skip_balanced(text, i + 2, ")" if text[i + 1] == "(" else "}")
        elif c == "$" and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in "_@*#?$!-"):
            plain = False
            i += 1
        elif c == "`":
            plain = False
            i = _skip_backquote(text, i + 1)
        else:
            value.append(c)
            i += 1
    raise LexError(i, "unterminated double quote")


def _skip_ansi_c(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text[i] == "'":
            return i + 1
        else:
            i += 1
    raise LexError(i, "unterminated $'...' string")


def _skip_backquote(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text[i] == "`":
            return i + 1
        else:
            i += 1
    raise LexError(i, "unterminated backquote")


def _skip_balanced(text: str, i: int, close: str) -> int:
    """Skip a $(...), ${...}, <(...) or extglob body, honouring nesting and quotes."""
    opener = "(" if close == ")" else "{"
    depth = 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'" and close == ")":
            end = text.find("'", i + 1)
            if end < 0:
                raise LexError(i, "unterminated single quote")
            i = end + 1
        elif c == '"':
            i, _ = _scan_double_quoted(text, i + 1)
        elif c == "`":
            i = _skip_backquote(text, i + 1)
        elif c == "$" and i + 1 < n and text[i + 1] in "({":
            i = _skip_balanced(text, i + 2, ")" if text[i + 1] == "(" else "}")
        elif c == opener:
            depth += 1
            i += 1
        elif c == close:
            depth -= 1
            i += 1
            if depth == 0:
                return i
        else:
            i += 1
    raise LexError(i, f"unterminated expansion (no matching {close!r})")


def _heredoc_delimiter(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    start = i
    end, literal = _scan_word(text, i)
    if end == start:
        raise LexError(i, "here-document without a delimiter")
    raw = text[start:end]
    delim = literal if literal is not None else raw.replace("'", "").replace('"', "")
    return delim, end


def _skip_heredocs(text: str, i: int, pending: list[tuple[str, bool]], tokens: list[Token]) -> int:
    for delim, strip_tabs in pending:
        start = i
        while True:
            if i >= len(text):
                raise LexError(start, f"here-document without its end line {delim!r}")
            end = text.find("\n", i)
            line_end = len(text) if end < 0 else end
            line = text[i:line_end]
            if strip_tabs:
                line = line.lstrip("\t")
            i = line_end + 1 if end >= 0 else line_end
            if line == delim:
                break
        tokens.append(Token(TokenKind.HEREDOC, start, i, text[start:i]))
    return i
