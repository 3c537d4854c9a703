"""PATCH bodies: JSON merge patch, a strategic merge patch subset, and JSON patch."""

from __future__ import annotations

import copy
from typing import Any

from .common import ApiError, Obj

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

#: List fields a strategic merge patch merges by key instead of replacing (the common ones).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "tolerations": "key",
}
#: Primitive lists a strategic merge patch unions.
UNION_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, ``null`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Merge patch, except that known list fields merge by their key (``containers`` by name)
    and ``$patch: delete`` entries remove list items, as the API server does for built-ins."""
    if isinstance(patch, list) and isinstance(target, list):
        if field in UNION_LISTS:
            return target + [v for v in patch if v not in target]
        key = MERGE_KEYS.get(field)
        if key and all(isinstance(v, dict) for v in [*patch, *target]):
            merged = [copy.deepcopy(v) for v in target]
            for item in patch:
                match = next((r for r in merged if r.get(key) == item.get(key)), None)
                if item.get("$patch") == "delete":
                    if match is not None:
                        merged.remove(match)
                elif match is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[merged.index(match)] = strategic_merge_patch(match, item)
            return merged
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, key)
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 operations: add, remove, replace, move, copy, test."""
    doc = copy.deepcopy(target)
    for op in ops:
        kind, parts = op.get("op"), _pointer(str(op.get("path", "")))
        try:
            parent, last = _resolve(doc, parts[:-1]), parts[-1]
            if kind == "test":
                if _resolve(doc, parts) != op.get("value"):
                    raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    if kind == "add":
                        parent.insert(index, copy.deepcopy(op["value"]))
                    else:
                        parent[index] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind in ("move", "copy"):
                source = _pointer(str(op["from"]))
                value = copy.deepcopy(_resolve(doc, source))
                if kind == "move":
                    holder = _resolve(doc, source[:-1])
                    del holder[int(source[-1]) if isinstance(holder, list) else source[-1]]
                json_patch_into = json_patch(
                    doc, [{"op": "add", "path": op["path"], "value": value}]
                )
                doc = json_patch_into
            else:
                raise ApiError(422, "Invalid", f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422, "Invalid", f"the JSON patch cannot be applied at {op.get('path')}: {exc!r}"
            ) from exc
    return doc


def apply_patch(target: Obj, body: Any, content_type: str, *, custom: bool) -> Obj:
    """The patched object, by the request's content type (as the API server dispatches)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON_PATCH:
        if not isinstance(body, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        return json_patch(target, body)
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", f"the {kind} patch body must be a JSON object")
    if kind == STRATEGIC:
        if custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        result: Obj = strategic_merge_patch(target, body)
        return result
    if kind in (MERGE, APPLY, "application/json"):
        merged: Obj = merge_patch(target, body)
        return merged
    raise ApiError(415, "UnsupportedMediaType", f"unsupported patch content type {content_type!r}")
