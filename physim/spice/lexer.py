"""Lexing SPICE text: logical lines, SI-suffixed numbers, .param expressions and card tokens."""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass

from physim.spec_base import SpecError

#: SI suffixes as powers of ten (mil = 25.4e-6 m is the one non-decimal scale)
SI = {"t": 12, "g": 9, "meg": 6, "k": 3, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15, "a": -18}
MIL = 25.4e-6
_UNUM = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
NUMBER = r"[-+]?" + _UNUM
_VALUE_RE = re.compile(rf"^({NUMBER})(meg|mil|[tgkmunpfa])?[a-z]*$", re.IGNORECASE)
_NUM_IN_EXPR = re.compile(rf"(?<![\w.])({_UNUM})(meg|mil|[tgkmunpfa])?[a-z]*", re.IGNORECASE)


class NetlistError(SpecError):
    """A netlist line physim cannot read; the message names the line number and text."""


@dataclass(frozen=True)
class Line:
    number: int
    text: str

    def error(self, what: str) -> NetlistError:
        return NetlistError(f"line {self.number}: {self.text!r}: {what}")


def logical_lines(text: str) -> tuple[Line, list[Line]]:
    """The title line and the remaining logical lines (comments stripped, continuations joined).

    ``*physim`` annotation lines are kept as they are.
    """
    raw = text.splitlines()
    if not raw:
        raise NetlistError("the netlist is empty; its first line must be the title")
    title = Line(1, raw[0].strip())
    out: list[Line] = []
    for i, line in enumerate(raw[1:], start=2):
        s = line.strip()
        if s.lower().startswith("*physim"):
            out.append(Line(i, s))
            continue
        if not s or s.startswith("*"):
            continue
        s = re.split(r";|\s\$\s|\s\$$", s, maxsplit=1)[0].strip()
        if not s:
            continue
        if s.startswith("+"):
            if not out:
                raise Line(i, s).error("a continuation line '+' with nothing to continue")
            prev = out[-1]
            out[-1] = Line(prev.number, prev.text + " " + s[1:].strip())
        else:
            out.append(Line(i, s))
    return title, out


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCS = {"sqrt": math.sqrt, "exp": math.exp, "abs": abs, "log": math.log}


def _eval(node: ast.AST, params: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body, params)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, params), _eval(node.right, params))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _eval(node.operand, params)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name):
        key = node.id.lower()
        if key == "pi":
            return math.pi
        if key in params:
            return params[key]
        raise ValueError(f"unknown parameter {node.id!r} (define it with .param)")
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.lower() in _FUNCS
        and len(node.args) == 1
    ):
        return float(_FUNCS[node.func.id.lower()](_eval(node.args[0], params)))
    raise ValueError("only numbers, .param names, + - * / **, sqrt, exp, log and abs are allowed")


def _scaled(number: str, suffix: str | None) -> float:
    """``number`` times its suffix, shifting the decimal exponent so that 0.8n is exactly the
    float nearest 8e-10 (not 0.8 · 1e-9)."""
    suffix = (suffix or "").lower()
    if suffix == "mil":
        return float(number) * MIL
    mant, _, exp = number.lower().partition("e")
    return float(f"{mant}e{int(exp or 0) + SI.get(suffix, 0)}")


def value(token: str, params: dict[str, float]) -> float:
    """A SPICE number (SI suffix allowed), a .param name, or a ``{expression}``."""
    tok = token.strip()
    m = _VALUE_RE.match(tok)
    if m:
        return _scaled(m.group(1), m.group(2))
    if tok.startswith("{") and tok.endswith("}"):
        tok = tok[1:-1]
    elif tok.startswith("'") and tok.endswith("'"):
        tok = tok[1:-1]
    elif tok.lower() not in params:
        raise ValueError(
            f"cannot read the value {token!r}: give a number with an SI suffix "
            "(f p n u m k meg g t), a .param name or a {expression}"
        )

    def num(m: re.Match) -> str:
        return repr(_scaled(m.group(1), m.group(2)))

    expr = _NUM_IN_EXPR.sub(num, tok).replace("^", "**")
    try:
        tree = ast.parse(expr, mode="eval")
        return _eval(tree, params)
    except SyntaxError:
        raise ValueError(f"cannot parse the expression {token!r}") from None
    except (RecursionError, MemoryError):
        # a sum of thousands of terms nests as deep as it is long
        raise ValueError(
            f"the expression {token[:40]!r}... is too deeply nested to evaluate "
            f"({len(tok)} characters); split it into several .param lines"
        ) from None


def split_card(text: str) -> list[str]:
    """Tokens of a card: whitespace-separated, with ``key = value`` joined to ``key=value``,
    and braces and parentheses kept whole."""
    text = re.sub(r"\s*=\s*", "=", text)
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        if ch.isspace() and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out
