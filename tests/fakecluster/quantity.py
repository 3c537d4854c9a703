"""Kubernetes resource quantities (``500m``, ``4Gi``, ``2``, ``1e3``): exact values, the sum
rule and the canonical spelling the API server writes them back in (``1500m``, ``1536Mi``)."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_PATTERN = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([a-zA-Z]*|[eE][+-]?[0-9]+)$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = {0: "", **{exp: suffix for suffix, exp in _BINARY.items()}}


@dataclasses.dataclass(frozen=True)
class Quantity:
    """An exact amount and the format it was written in (which decides how it prints)."""

    value: Fraction
    format: str = DECIMAL_SI

    @classmethod
    def parse(cls, text: object) -> Quantity:
        """``"500m"``, ``"4Gi"``, ``2``, ``"1e3"``; ValueError for anything else."""
        match = _PATTERN.match(str(text).strip())
        if not match:
            raise ValueError(f"quantities must match the regular expression: {text!r}")
        number, suffix = Fraction(match[1]), match[2]
        if suffix in _BINARY:
            return cls(number * 2 ** _BINARY[suffix], BINARY_SI)
        if suffix in _DECIMAL:
            return cls(number * Fraction(10) ** _DECIMAL[suffix], DECIMAL_SI)
        if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
            return cls(number * Fraction(10) ** int(suffix[1:]), DECIMAL_EXPONENT)
        raise ValueError(f"quantities must match the regular expression: {text!r}")

    def __add__(self, other: Quantity) -> Quantity:
        """The sum keeps this one's format, or takes the other's when this one is zero."""
        return Quantity(self.value + other.value, self.format if self.value else other.format)

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        """The canonical form: the largest suffix that keeps an integer mantissa."""
        if not self.value:
            return "0"
        binary = self.format == BINARY_SI and abs(self.value) >= 1024
        if binary and self.value.denominator == 1:
            mantissa, exp = int(self.value), 0
            while mantissa % 1024 == 0 and exp < 60:
                mantissa, exp = mantissa // 1024, exp + 10
            return f"{mantissa}{_BINARY_SUFFIX[exp]}"
        mantissa, exp = _decimal(self.value)
        shift = exp % 3
        mantissa, exp = mantissa * 10**shift, exp - shift
        if self.format != DECIMAL_EXPONENT and exp in _DECIMAL_SUFFIX:
            return f"{mantissa}{_DECIMAL_SUFFIX[exp]}"
        return f"{mantissa}e{exp}" if exp else str(mantissa)


ZERO = Quantity(Fraction(0))


def _decimal(value: Fraction) -> tuple[int, int]:
    """``value`` as ``mantissa * 10**exp`` with no trailing zeros in the mantissa (values
    finer than a nano are rounded up, as the API server does)."""
    exp = 0
    while value.denominator != 1 and exp > -9:
        value, exp = value * 10, exp - 1
    mantissa = -(-value.numerator // value.denominator)
    while mantissa and mantissa % 10 == 0:
        mantissa, exp = mantissa // 10, exp + 1
    return mantissa, exp


def parse_float(text: object) -> float:
    """A quantity as a plain number (``"500m"`` -> 0.5)."""
    return float(Quantity.parse(text))


def canonical(text: object) -> str:
    """How the API server spells a quantity it stores (``"1000m"`` -> ``"1"``)."""
    return str(Quantity.parse(text))
