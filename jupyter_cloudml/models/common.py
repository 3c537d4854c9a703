"""Names, labels, resources and JSON (de)serialisation shared by every model."""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..exceptions import InvalidSpec

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MEMORY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
# Kubernetes label syntax: an optional DNS-subdomain prefix and '/', then a name of <= 63 chars.
LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def check_name(name: str, what: str = "name") -> str:
    """Validate a DNS-1123 label short enough to prefix ids and cluster object names."""
    if not NAME_RE.match(name) or len(name) > NAME_MAX:
        raise InvalidSpec(
            f"{what} {name!r} is not valid: use at most {NAME_MAX} lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (e.g. 'mnist-cnn')"
        )
    return name


def check_label(key: str, value: str | None = None) -> None:
    """Validate a label key (and value) by Kubernetes rules, since labels become cluster labels."""
    if len(key) > 253 or not LABEL_KEY_RE.match(key):
        raise InvalidSpec(
            f"label key {key!r} is not valid: letters, digits, '-', '_', '.', at most 63, "
            "with an optional 'domain/' prefix (e.g. team or example.com/team)"
        )
    if value is not None and not LABEL_VALUE_RE.match(value):
        raise InvalidSpec(
            f"label value {value!r} of {key!r} is not valid: at most 63 letters, digits, '-', "
            "'_' or '.', starting and ending with a letter or digit (e.g. team=cv)"
        )


def check_webhook(url: str) -> None:
    """A webhook is an http or https URL with a host (`--notify https://chat.example/hook`)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSpec(
            f"--notify takes an http or https URL with a host (e.g. "
            f"https://chat.example.com/hooks/123), got {url!r}"
        )


def slugify(text: str, default: str = "job") -> str:
    """Turn any text (a notebook or script name) into a valid job name."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:NAME_MAX].strip("-")
    return slug or default


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one replica asks for."""

    cpu: float = 1.0
    memory: str | None = None
    gpus: int = 0
    gpu_type: str | None = None

    def __post_init__(self) -> None:
        if not self.cpu >= 0:  # 0: no CPU reserved (best effort), e.g. a study driver
            raise InvalidSpec(f"cpu must be >= 0, got {self.cpu}")
        if self.memory is not None and not MEMORY_RE.match(self.memory):
            raise InvalidSpec(f"memory {self.memory!r} is not a quantity like '512Mi' or '4Gi'")
        if self.gpus < 0:
            raise InvalidSpec(f"gpus must be >= 0, got {self.gpus}")
        if self.gpu_type is not None and self.gpus == 0:
            raise InvalidSpec(f"gpu type {self.gpu_type!r} given without --gpus N")


# --- JSON -------------------------------------------------------------------------------------


#: Field metadata of a mapping whose values never leave the process in JSON (names do).
SECRET = "secret"


def to_dict(obj: Any) -> Any:
    """A model (or a structure of them) as plain JSON data; bytes become base64 text. The
    values of fields marked `SECRET` become empty strings: only their names are kept."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: dict.fromkeys(getattr(obj, f.name), "")
            if f.metadata.get(SECRET)
            else to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def from_dict(cls: type, data: Any) -> Any:
    """Rebuild a model of class `cls` from `to_dict` output (validating it again)."""
    hints = _field_types(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            kwargs[field.name] = _coerce(hints[field.name], data[field.name])
    return cls(**kwargs)


def _coerce(tp: Any, value: Any) -> Any:
    import types
    import typing

    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value)
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        return tuple(_coerce(item, v) for v in value)
    if tp is bytes:
        return base64.b64decode(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if origin in (Mapping, dict):
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return {k: _coerce(item, v) for k, v in value.items()}
    if tp is dict:
        return dict(value)
    return value
