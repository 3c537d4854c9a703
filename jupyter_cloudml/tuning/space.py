"""Search spaces as text: the `--param NAME=KIND(ARGS)` grammar, its inverse, and trainer flags.

Kinds: uniform, loguniform, reverselog (DOUBLE); int, logint, reverselogint (INTEGER);
discrete (numbers); choice (strings, optionally quoted with ' or ", backslash escapes the
quote). Pure code, no Optuna: the magic, the CLI and the study driver all share it.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Mapping, Sequence

from ..exceptions import InvalidSpec
from ..models import ParamSpec, ParamType, Scale

#: kind -> (type, scale); the order is the one shown in error messages.
KINDS: dict[str, tuple[ParamType, Scale]] = {
    "uniform": (ParamType.DOUBLE, Scale.LINEAR),
    "loguniform": (ParamType.DOUBLE, Scale.LOG),
    "reverselog": (ParamType.DOUBLE, Scale.REVERSE_LOG),
    "int": (ParamType.INTEGER, Scale.LINEAR),
    "logint": (ParamType.INTEGER, Scale.LOG),
    "reverselogint": (ParamType.INTEGER, Scale.REVERSE_LOG),
    "discrete": (ParamType.DISCRETE, Scale.LINEAR),
    "choice": (ParamType.CATEGORICAL, Scale.LINEAR),
}
_KIND_OF = {v: k for k, v in KINDS.items()}
_SPACE_RE = re.compile(r"([A-Za-z_]\w*)\s*\((.*)\)", re.DOTALL)
_PLAIN_RE = re.compile(r"[^\s,()'\"]+")
EXAMPLE = "lr=loguniform(1e-4,1e-1)"

#: Grid search refuses larger products: each point is a training job.
MAX_GRID_POINTS = 100_000

Value = float | int | str


def parse_param(text: str) -> ParamSpec:
    """Parse one `--param` flag, e.g. `lr=loguniform(1e-4,1e-1)` or `opt=choice(adam,sgd)`."""
    where = f"--param {text!r}"
    name, eq, space = text.partition("=")
    if not eq:
        raise InvalidSpec(f"{where}: expected NAME=KIND(ARGS), e.g. {EXAMPLE}")
    match = _SPACE_RE.fullmatch(space.strip())
    if not match:
        raise InvalidSpec(f"{where}: expected KIND(ARGS) after '=', e.g. {EXAMPLE}")
    kind = match.group(1).lower()
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f", did you mean {close[0]!r}?" if close else ""
        raise InvalidSpec(f"{where}: unknown kind {kind!r}{hint} (use {', '.join(KINDS)})")
    ptype, scale = KINDS[kind]
    try:
        args = _split_args(match.group(2))
        if ptype in (ParamType.DOUBLE, ParamType.INTEGER):
            if len(args) != 2:
                raise InvalidSpec(f"{kind} takes 2 values (LO,HI), got {len(args)}")
            lo, hi = (_number(kind, *arg) for arg in args)
            if ptype is ParamType.DOUBLE:
                lo, hi = float(lo), float(hi)
            else:
                lo, hi = whole(lo), whole(hi)
            return ParamSpec(name.strip(), ptype, lo, hi, scale=scale)
        if not args:
            raise InvalidSpec(f"{kind} needs at least one value")
        if ptype is ParamType.DISCRETE:
            return ParamSpec(name.strip(), ptype, values=tuple(_number(kind, *a) for a in args))
        return ParamSpec(name.strip(), ptype, values=tuple(value for value, _ in args))
    except InvalidSpec as error:
        raise InvalidSpec(f"{where}: {error}") from None


def looks_like_space(text: str) -> bool:
    """Whether a `--param` value is a search space (`KIND(ARGS)`), not a plain value."""
    return _SPACE_RE.fullmatch(text.strip()) is not None


def param_to_text(p: ParamSpec) -> str:
    """The `--param` text that `parse_param` turns back into `p`."""
    if p.type in (ParamType.DOUBLE, ParamType.INTEGER):
        args = [_format_bound(p.min_value), _format_bound(p.max_value)]
        kind = _KIND_OF[(p.type, p.scale)]
    elif p.type is ParamType.DISCRETE:
        args = [_format_number(v) for v in p.values]
        kind = "discrete"
    else:
        args = [_quote(str(v)) for v in p.values]
        kind = "choice"
    return f"{p.name}={kind}({','.join(args)})"


def trainer_flags(params: Mapping[str, Value]) -> list[str]:
    """Trial values as trainer flags, Google's convention: `["--lr=0.01", "--opt=adam"]`."""
    return [f"--{name}={format_value(value)}" for name, value in params.items()]


def format_value(value: Value) -> str:
    """A value as flag text: ints without a decimal point, floats at full (repr) precision."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    raise TypeError(f"a hyperparameter value is a number or a string, got {value!r}")


def grid_size(params: Sequence[ParamSpec]) -> int:
    """How many points a grid search over `params` has (INTEGER ranges count every integer)."""
    size = 1
    for p in params:
        if p.type is ParamType.DOUBLE:
            raise InvalidSpec(
                "grid search needs INTEGER, DISCRETE or CATEGORICAL parameters; "
                f"{p.name!r} is DOUBLE"
            )
        if p.type is ParamType.INTEGER:
            size *= int(p.max_value or 0) - int(p.min_value or 0) + 1
        else:
            size *= len(p.values)
    return size


def grid_space(params: Sequence[ParamSpec]) -> dict[str, list[Value]]:
    """Every value of every parameter, for a grid search; refuses more than MAX_GRID_POINTS."""
    size = grid_size(params)
    if size > MAX_GRID_POINTS:
        raise InvalidSpec(
            f"grid search over {size:,} combinations is too many (at most "
            f"{MAX_GRID_POINTS:,}): narrow the ranges or use --algorithm tpe or random"
        )
    return {
        p.name: (
            list(range(int(p.min_value or 0), int(p.max_value or 0) + 1))
            if p.type is ParamType.INTEGER
            else list(p.values)
        )
        for p in params
    }


def to_number(value: object) -> int | float:
    """A finite int or float from a number or its text (ints stay ints); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {value!r}")
    number: int | float
    if isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            number = float(value)
    else:
        number = value
    try:
        finite = math.isfinite(number)
    except OverflowError:  # an int beyond float range
        finite = False
    if not finite:
        raise ValueError(f"not a finite number: {value!r}")
    return number


def whole(x: float) -> float:
    """Integral floats as ints (INTEGER bounds like 1e3); others stay for ParamSpec to refuse."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


# --- helpers ------------------------------------------------------------------------------------


def _split_args(body: str) -> list[tuple[str, bool]]:
    """Split `a, 'b,c', "d"` into (value, was_quoted) pairs."""
    args: list[tuple[str, bool]] = []
    i, n = 0, len(body)
    if not body.strip():
        return args
    while True:
        while i < n and body[i].isspace():
            i += 1
        if i < n and body[i] in "'\"":
            value, i = _read_quoted(body, i)
            args.append((value, True))
            while i < n and body[i].isspace():
                i += 1
            if i < n and body[i] != ",":
                raise InvalidSpec(f"unexpected {body[i:]!r} after the quoted value {value!r}")
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            value = body[i:end].strip()
            if not value:
                raise InvalidSpec("empty value in the list (quote it to mean '')")
            if not _PLAIN_RE.fullmatch(value):
                raise InvalidSpec(f"{value!r} needs quotes (it has spaces, quotes or brackets)")
            args.append((value, False))
            i = end
        if i >= n:
            return args
        i += 1  # the comma
        if not body[i:].strip():
            raise InvalidSpec("empty value after the last ','")


def _read_quoted(body: str, start: int) -> tuple[str, int]:
    """Read a quoted string starting at `start`; a backslash escapes the quote or itself."""
    quote, out, i = body[start], [], start + 1
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body) and body[i + 1] in (quote, "\\"):
            out.append(body[i + 1])
            i += 2
        elif char == quote:
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise InvalidSpec(f"unterminated quote in {body[start:]!r}")


def _number(kind: str, text: str, quoted: bool = False) -> int | float:
    try:
        if quoted:
            raise ValueError("quoted")
        return to_number(text)
    except ValueError:
        raise InvalidSpec(f"{kind}: {text!r} is not a finite number") from None


def _format_number(x: float | str | None) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise InvalidSpec(f"expected a number, got {x!r}")
    return str(x) if isinstance(x, int) else repr(float(x))


def _format_bound(x: float | None) -> str:
    """A range bound as short text: `0.0001`, `1e-05`, and `1` rather than `1.0`."""
    text = _format_number(x)
    return text[:-2] if text.endswith(".0") else text


def _quote(value: str) -> str:
    """A choice as text: bare when the grammar allows, else quoted with escapes."""
    if _PLAIN_RE.fullmatch(value):
        return value
    quote = "'" if "'" not in value or '"' in value else '"'
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return f"{quote}{escaped}{quote}"
