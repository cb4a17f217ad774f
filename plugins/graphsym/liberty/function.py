"""Boolean ``function`` strings of Liberty pins: parsing, evaluation and unateness.

Liberty writes NOT as prefix ``!`` or postfix ``'``, AND as ``&``, ``*`` or juxtaposition
(``A B``), OR as ``|`` or ``+``, XOR as ``^``, and the constants ``0`` and ``1`` (operator list
from the Liberty reference manual, "function" attribute). Precedence from high to low is NOT,
AND, XOR, OR.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping

__all__ = ["FunctionSyntaxError", "compile_function", "function_inputs", "unateness"]

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_\[\]\.]*)|([01])(?![A-Za-z0-9_])|(\S))")

Evaluator = Callable[[Mapping[str, bool]], bool]


class FunctionSyntaxError(ValueError):
    """A ``function`` string is not a valid Liberty Boolean expression."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            break
        position = match.end()
        name, constant, symbol = match.groups()
        if name is not None:
            tokens.append(("name", name))
        elif constant is not None:
            tokens.append(("const", constant))
        elif symbol is not None:
            tokens.append(("op", symbol))
    return tokens


class _Parser:
    """Recursive-descent parser that builds nested closures over a pin-value mapping."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0
        self.names: list[str] = []

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def fail(self, message: str) -> FunctionSyntaxError:
        return FunctionSyntaxError(f"invalid function {self.text!r}: {message}")

    def parse(self) -> Evaluator:
        if not self.tokens:
            raise self.fail("the expression is empty")
        evaluator = self.parse_or()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")
        return evaluator

    def parse_or(self) -> Evaluator:
        terms = [self.parse_xor()]
        while self.peek() in (("op", "|"), ("op", "+")):
            self.position += 1
            terms.append(self.parse_xor())
        if len(terms) == 1:
            return terms[0]
        return lambda values: any(term(values) for term in terms)

    def parse_xor(self) -> Evaluator:
        terms = [self.parse_and()]
        while self.peek() == ("op", "^"):
            self.position += 1
            terms.append(self.parse_and())
        if len(terms) == 1:
            return terms[0]
        return lambda values: sum(term(values) for term in terms) % 2 == 1

    def parse_and(self) -> Evaluator:
        factors = [self.parse_not()]
        while True:
            token = self.peek()
            if token in (("op", "&"), ("op", "*")):
                self.position += 1
            elif token is None or token[0] == "op" and token[1] not in "(!":
                break
            factors.append(self.parse_not())
        if len(factors) == 1:
            return factors[0]
        return lambda values: all(factor(values) for factor in factors)

    def parse_not(self) -> Evaluator:
        if self.peek() == ("op", "!"):
            self.position += 1
            inner = self.parse_not()
            return lambda values: not inner(values)
        evaluator = self.parse_atom()
        while self.peek() == ("op", "'"):
            self.position += 1
            evaluator = (lambda inner: lambda values: not inner(values))(evaluator)
        return evaluator

    def parse_atom(self) -> Evaluator:
        token = self.peek()
        if token is None:
            raise self.fail("the expression ends early")
        self.position += 1
        kind, text = token
        if kind == "name":
            if text not in self.names:
                self.names.append(text)
            return lambda values: bool(values[text])
        if kind == "const":
            constant = text == "1"
            return lambda values: constant
        if text == "(":
            inner = self.parse_or()
            if self.peek() != ("op", ")"):
                raise self.fail("a '(' is not closed")
            self.position += 1
            return inner
        raise self.fail(f"unexpected {text!r}")


def compile_function(text: str) -> tuple[Evaluator, list[str]]:
    """Parse ``text`` into an evaluator over ``{pin name: bool}`` and the pin names it reads,
    in order of first appearance. Raises :class:`FunctionSyntaxError`."""
    parser = _Parser(text)
    evaluator = parser.parse()
    return evaluator, parser.names


def function_inputs(text: str) -> list[str]:
    """Return the pin names that a function string reads."""
    return compile_function(text)[1]


def unateness(text: str, pin: str, max_inputs: int = 10) -> str:
    """Classify how the function depends on ``pin``: ``positive_unate``, ``negative_unate`` or
    ``non_unate``, by enumerating every assignment of the other inputs.

    A function of more than ``max_inputs`` pins, or one that does not read ``pin``, returns
    ``non_unate``, the conservative choice for timing.
    """
    evaluator, names = compile_function(text)
    if pin not in names or len(names) > max_inputs:
        return "non_unate"
    others = [name for name in names if name != pin]
    rises = falls = False
    for bits in itertools.product((False, True), repeat=len(others)):
        values = dict(zip(others, bits))
        values[pin] = False
        low = evaluator(values)
        values[pin] = True
        high = evaluator(values)
        rises |= high and not low
        falls |= low and not high
    if rises and not falls:
        return "positive_unate"
    if falls and not rises:
        return "negative_unate"
    return "non_unate"
