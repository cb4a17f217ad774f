"""Generic Liberty syntax: tokens and the tree of groups and attributes.

Liberty (Synopsys "Liberty Reference Manual", open Liberty release) has three statement kinds:

* groups ``name (args) { statements }``,
* simple attributes ``name : value ;``,
* complex attributes ``name (value, value, ...) ;``,

plus ``/* */`` and ``//`` comments, double-quoted strings and ``\\`` at the end of a line to
continue a statement. This module treats every group and attribute name alike, so that
every file parses into the same tree, and :mod:`.parse` gives the tree its meaning.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from .model import LibertyError

__all__ = ["Attribute", "Group", "parse_groups"]

# One token per match: whitespace and comments are skipped, a backslash before a line break
# joins lines, quoted strings may contain escaped characters and continued lines.
_TOKEN = re.compile(
    r"""
    (?P<skip>\s+|/\*.*?\*/|//[^\n]*|\\[ \t]*\r?\n)
  | "(?P<string>(?:[^"\\]|\\.|\\\r?\n)*)"
  | (?P<punct>[(){}:;,])
  | (?P<word>[^\s(){}:;,"]+)
    """,
    re.VERBOSE | re.DOTALL,
)

_CONTINUATION = re.compile(r"\\[ \t]*\r?\n")


@dataclass
class Attribute:
    """A simple (``complex=False``, one value) or complex attribute with its 1-based line."""

    name: str
    values: list[str]
    complex: bool
    line: int

    @property
    def value(self) -> str:
        return " ".join(self.values)


@dataclass
class Group:
    """A group statement: its type (``cell``, ``pin``, ...), arguments and body, in file order."""

    type: str
    args: list[str]
    line: int
    attributes: list[Attribute] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.args[0] if self.args else ""

    def attribute(self, name: str) -> Attribute | None:
        """Return the last attribute called ``name`` (a repeated attribute overrides)."""
        for attribute in reversed(self.attributes):
            if attribute.name == name:
                return attribute
        return None

    def subgroups(self, type_name: str) -> list[Group]:
        return [group for group in self.groups if group.type == type_name]


class _Tokens:
    """Token list with kinds, texts and start offsets; line numbers are computed on demand."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.kinds: list[str] = []
        self.texts: list[str] = []
        self.offsets: list[int] = []
        self._newlines = [match.start() for match in re.finditer("\n", text)]
        position = 0
        end = len(text)
        while position < end:
            match = _TOKEN.match(text, position)
            if match is None:
                if text[position] == '"':
                    raise self.error(position, "string is not closed by a '\"'")
                raise self.error(position, f"unexpected character {text[position]!r}")
            kind = match.lastgroup
            if kind != "skip":
                self.kinds.append(kind)
                value = match.group(kind)
                if kind == "string" and "\\" in value:
                    value = _CONTINUATION.sub("", value).replace('\\"', '"')
                self.texts.append(value)
                self.offsets.append(match.start())
            position = match.end()
        self._check_unclosed(text)

    def _check_unclosed(self, text: str) -> None:
        # The token pattern reads an unclosed comment as a plain word, which would give a
        # confusing error much later, so name the real cause at its start instead.
        for kind, value, offset in zip(self.kinds, self.texts, self.offsets):
            if kind == "word" and value.startswith("/*"):
                raise self.error(offset, "comment '/*' is not closed")

    def line(self, offset: int) -> int:
        return bisect_right(self._newlines, offset - 1) + 1 if offset >= 0 else 0

    def error(self, offset: int, message: str) -> LibertyError:
        return LibertyError(f"{self.source}:{self.line(offset)}: {message}")


def parse_groups(text: str, source: str = "<string>") -> list[Group]:
    """Parse Liberty text into its top-level groups (normally one ``library`` group).

    Raises :class:`LibertyError` with ``source:line`` for syntax errors: an unbalanced ``{`` or
    ``(``, a statement without a name, a missing ``;`` before a new statement.
    """
    tokens = _Tokens(text, source)
    kinds, texts, offsets = tokens.kinds, tokens.texts, tokens.offsets
    count = len(kinds)
    root = Group(type="<root>", args=[], line=0)
    stack = [root]
    position = 0

    def fail(at: int, message: str) -> LibertyError:
        if at < count:
            return tokens.error(offsets[at], message)
        return tokens.error(offsets[-1] if offsets else 0, message)

    while position < count:
        kind, value = kinds[position], texts[position]
        if kind == "punct":
            if value == "}":
                if len(stack) == 1:
                    raise fail(position, "'}' closes no open group")
                stack.pop()
                position += 1
                continue
            if value == ";":
                position += 1
                continue
            raise fail(position, f"expected an attribute or group name, found {value!r}")

        name = value
        start = position
        line = tokens.line(offsets[start])
        position += 1
        if position >= count:
            raise fail(start, f"statement {name!r} ends at the end of the file")
        follower = texts[position] if kinds[position] == "punct" else None

        if follower == ":":
            # Simple attribute: the value runs to ';' or to the end of the line when the
            # file omits the ';' (some vendor files do).
            position += 1
            values: list[str] = []
            while position < count:
                if kinds[position] == "punct" and texts[position] in ";}":
                    break
                if values and tokens.line(offsets[position]) != tokens.line(offsets[position - 1]):
                    break
                if kinds[position] == "punct" and texts[position] != ",":
                    raise fail(position, f"unexpected {texts[position]!r} in the value of {name!r}")
                values.append(texts[position])
                position += 1
            if not values:
                raise fail(start, f"attribute {name!r} has no value")
            stack[-1].attributes.append(Attribute(name, values, complex=False, line=line))
            if position < count and texts[position] == ";" and kinds[position] == "punct":
                position += 1
            continue

        if follower != "(":
            raise fail(position, f"expected ':' or '(' after {name!r}, found {texts[position]!r}")

        position += 1
        args: list[str] = []
        while True:
            if position >= count:
                raise fail(start, f"'(' after {name!r} is not closed")
            if kinds[position] == "punct":
                punct = texts[position]
                if punct == ")":
                    position += 1
                    break
                if punct != ",":
                    raise fail(position, f"unexpected {punct!r} in the arguments of {name!r}")
            else:
                args.append(texts[position])
            position += 1

        if position < count and kinds[position] == "punct" and texts[position] == "{":
            group = Group(type=name, args=args, line=line)
            stack[-1].groups.append(group)
            stack.append(group)
            position += 1
        else:
            stack[-1].attributes.append(Attribute(name, args, complex=True, line=line))
            if position < count and kinds[position] == "punct" and texts[position] == ";":
                position += 1

    if len(stack) > 1:
        open_group = stack[-1]
        raise LibertyError(
            f"{source}:{open_group.line}: group {open_group.type} ({', '.join(open_group.args)}) "
            "is not closed by a '}'"
        )
    return root.groups
