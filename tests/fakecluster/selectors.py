"""Label and field selectors, parsed as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .common import ApiError, Obj

Matcher = Callable[[Obj], bool]

_SET_TERM = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,()]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside ``(...)`` value sets."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def _bad(selector: str, term: str) -> ApiError:
    return ApiError(
        400,
        "BadRequest",
        f"unable to parse requirement: found '{term.strip()}', expected: in, notin, =, ==, !=, "
        f"gt, lt (selector {selector!r})",
    )


def _requirement(
    key: str, op: str, values: frozenset[str] = frozenset()
) -> Callable[[Mapping[str, str]], bool]:
    """One parsed term (``in``, ``notin``, ``exists``, ``!``) as a predicate on labels."""

    def check(labels: Mapping[str, str]) -> bool:
        if op == "in":
            return labels.get(key) in values
        if op == "notin":
            return labels.get(key) not in values
        return (key in labels) == (op == "exists")

    return check


def label_matcher(selector: str | None) -> Matcher:
    """``a=b,c!=d,e,!f,g in (x,y),h notin (z)`` -> a predicate on objects' labels."""
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for term in _split_terms(selector or ""):
        if m := _SET_TERM.match(term):
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            checks.append(_requirement(m["key"], m["op"], values))
        elif m := _EQ_TERM.match(term):
            op = "notin" if m["op"] == "!=" else "in"
            checks.append(_requirement(m["key"], op, frozenset({m["value"]})))
        elif m := _EXISTS_TERM.match(term):
            checks.append(_requirement(m["key"], "!" if m["neg"] else "exists"))
        else:
            raise _bad(selector or "", term)

    def match(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return match


def match_labels_selector(selector: Obj | None) -> Matcher:
    """A ``LabelSelector`` object (matchLabels + matchExpressions) -> predicate."""
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return label_matcher(",".join(terms))


def field_value(obj: Obj, path: str) -> Any:
    """The value at a dotted field path (``involvedObject.name``), or None."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def field_matcher(selector: str | None) -> Matcher:
    """``metadata.name=x,status.phase!=Running`` -> predicate (any dotted field path)."""
    checks: list[Callable[[Obj], bool]] = []
    for term in _split_terms(selector or ""):
        m = _EQ_TERM.match(term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term.strip()!r}")
        path, value, negate = m["key"], m["value"], m["op"] == "!="

        def check(obj: Obj, p: str = path, v: str = value, neg: bool = negate) -> bool:
            actual = field_value(obj, p)
            text = "" if actual is None else str(actual)
            return (text != v) if neg else (text == v)

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)
