"""Scalars out of serialized ``Event`` protos, read straight from the protobuf wire format.

Only what a scalar needs is decoded: ``Event.wall_time`` (1), ``step`` (2) and ``summary`` (5);
``Summary.value`` (1); ``Value.tag`` (1), ``simple_value`` (2), ``node_name`` (7), ``tensor`` (8)
and ``metadata`` (9) -> ``plugin_data`` (1) -> ``plugin_name`` (1); in a ``TensorProto`` the dtype,
shape and the first number. Images, histograms, audio and non-scalar tensors are stepped over by
their length, never decoded. Malformed input raises ``ValueError``/``IndexError``/
``struct.error``; the caller turns them into ``CorruptEventFile``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from .records import CorruptEventFile

#: tag -> [(step, wall_time, value), ...] in file order.
Points = dict[str, list[tuple[int, float, float]]]
Unpack = Callable[[bytes, int], tuple[Any, ...]]
#: A decoded number, where it starts in the record, and how to unpack it when its size is fixed.
Number = tuple[float, int, Unpack | None]

SCALARS_PLUGIN = "scalars"
_DOUBLE = struct.Struct("<d").unpack_from
_FLOAT = struct.Struct("<f").unpack_from
_HALF = struct.Struct("<e").unpack_from
_INT32 = struct.Struct("<i").unpack_from
_INT64 = struct.Struct("<q").unpack_from
_U16 = struct.Struct("<H").pack
_U64_MASK = (1 << 64) - 1

# TensorFlow DataTypes of scalars: byte size and decoder of their tensor_content, and the
# TensorProto field of their typed values.
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_HALF = 1, 2, 3, 9, 19
_CONTENT = {
    _DT_FLOAT: (4, _FLOAT),
    _DT_DOUBLE: (8, _DOUBLE),
    _DT_INT32: (4, _INT32),
    _DT_INT64: (8, _INT64),
    _DT_HALF: (2, _HALF),
}
_VALUES_FIELD = {_DT_FLOAT: 5, _DT_DOUBLE: 6, _DT_INT32: 7, _DT_INT64: 10, _DT_HALF: 13}
# Values field -> wire type when not packed; byte size of fixed-size numbers.
_UNPACKED_WIRE = {5: 5, 6: 1, 7: 0, 10: 0, 13: 0}
_FIXED_SIZE = {5: 4, 6: 8}

_WIDTH: dict[object, int] = {_FLOAT: 4, _DOUBLE: 8, _HALF: 2}
_MAX_TEMPLATES = 4096

# Value kinds: the `value` oneof of Summary.Value.
_NONE, _SIMPLE, _TENSOR, _OTHER = 0, 1, 2, 3


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64_MASK, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def _skip(data: bytes, pos: int, key: int) -> int:
    """Position after the field whose key was just read."""
    wire = key & 7
    if wire == 0:
        return _varint(data, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        length, pos = _varint(data, pos)
        return pos + length
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported wire type {wire}")


def _skip_field(data: bytes, pos: int) -> int:
    """Position after the field whose key starts at ``pos``."""
    key, pos = _varint(data, pos)
    return _skip(data, pos, key)


def _length(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    """A length-delimited field's (start, end) after its key; checked against ``limit``."""
    length = data[pos]
    pos += 1
    if length >= 0x80:
        length, pos = _varint(data, pos - 1)
    end = pos + length
    if end > limit:
        raise ValueError("field overruns its message")
    return pos, end


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def plugin_name(data: bytes, ranges: Iterable[tuple[int, int]]) -> str:
    """``SummaryMetadata.plugin_data.plugin_name`` (merged over repeated occurrences)."""
    name = b""
    for pos, end in ranges:
        while pos < end:
            key = data[pos]
            pos += 1
            if key == 0x0A:  # plugin_data
                start, stop = _length(data, pos, end)
                pos = stop
                while start < stop:
                    inner = data[start]
                    start += 1
                    if inner == 0x0A:
                        begin, start = _length(data, start, stop)
                        name = data[begin:start]
                    else:
                        start = _skip_field(data, start - 1)
                if start != stop:
                    raise ValueError("plugin data overruns its metadata")
            else:
                pos = _skip_field(data, pos - 1)
        if pos != end:
            raise ValueError("metadata overruns its message")
    return name.decode("utf-8", "replace")


def tensor_scalar(data: bytes, ranges: Iterable[tuple[int, int]]) -> Number | None:
    """The number in a one-element float/double/half/int32/int64 ``TensorProto``, else None."""
    dtype = 0
    elements = 1
    content = (0, 0)
    first: dict[int, int] = {}  # values field -> position of its first number
    for pos, end in ranges:
        while pos < end:
            key, pos = _varint(data, pos)
            field, wire = key >> 3, key & 7
            if field == 1 and wire == 0:
                dtype, pos = _varint(data, pos)
            elif field == 2 and wire == 2:  # tensor_shape
                start, pos = _length(data, pos, end)
                count = _shape_elements(data, start, pos)
                elements = -1 if count < 0 or elements < 0 else elements * count
            elif field == 4 and wire == 2:  # tensor_content
                content = _length(data, pos, end)
                pos = content[1]
            elif field in _UNPACKED_WIRE and wire == 2:  # packed numbers
                start, pos = _length(data, pos, end)
                if (pos - start) % _FIXED_SIZE.get(field, 1):
                    raise ValueError("packed numbers of a wrong length")
                if start < pos:
                    first.setdefault(field, start)
            elif _UNPACKED_WIRE.get(field) == wire:
                first.setdefault(field, pos)
                pos = _skip(data, pos, key)
            else:
                pos = _skip(data, pos, key)
        if pos != end:
            raise ValueError("tensor overruns its message")
    if elements != 1 or dtype not in _CONTENT:
        return None
    if content[1] > content[0]:
        size, unpack = _CONTENT[dtype]
        if content[1] - content[0] != size:
            return None
        return float(unpack(data, content[0])[0]), content[0], unpack
    found = first.get(_VALUES_FIELD[dtype])
    if found is None:
        return None
    if dtype == _DT_FLOAT:
        return float(_FLOAT(data, found)[0]), found, _FLOAT
    if dtype == _DT_DOUBLE:
        return float(_DOUBLE(data, found)[0]), found, _DOUBLE
    number = _signed64(_varint(data, found)[0])
    if dtype == _DT_INT32:
        number = (number & 0xFFFFFFFF) - ((number & 0x80000000) << 1)
    elif dtype == _DT_HALF:
        return float(_HALF(_U16(number & 0xFFFF))[0]), found, None
    return float(number), found, None


def _shape_elements(data: bytes, pos: int, end: int) -> int:
    """Number of elements of a ``TensorShapeProto`` (-1 when unknown)."""
    elements = 1
    unknown = False
    while pos < end:
        key, pos = _varint(data, pos)
        if key == 0x12:  # dim
            start, pos = _length(data, pos, end)
            size = 0
            while start < pos:
                inner, start = _varint(data, start)
                if inner == 0x08:
                    size, start = _varint(data, start)
                    size = _signed64(size)
                else:
                    start = _skip(data, start, inner)
            if start != pos:
                raise ValueError("dimension overruns its shape")
            unknown = unknown or size < 0
            elements *= size
        elif key == 0x18:  # unknown_rank
            rank_unknown, pos = _varint(data, pos)
            unknown = unknown or bool(rank_unknown)
        else:
            pos = _skip(data, pos, key)
    if pos != end:
        raise ValueError("shape overruns its message")
    return -1 if unknown else elements


#: A recurring event's bytes after its step, with a hole where its number goes:
#: (size, bytes before the hole after the tag, hole offset from the tag's end, bytes after the
#: hole, unpacker of the number, tag).
_Template = tuple[int, bytes, int, bytes, Unpack, str]


class EventDecoder:
    """Decodes one file's events into scalar points, remembering each tag's plugin across calls.

    A tensor counts as a scalar when the first metadata of its tag (writers may send it only
    once per file) names the ``scalars`` plugin or no plugin; ``other_tags`` restores the tags
    known to belong to another plugin when reading resumes from a cursor.

    Writers repeat one layout per tag, so after an event is parsed it becomes a template: later
    events equal to it but for wall_time, step and the number are matched as bytes, not parsed.
    """

    def __init__(self, other_tags: Iterable[str] = ()) -> None:
        self.plugins: dict[str, str] = dict.fromkeys(other_tags, "?")
        self._tags: dict[bytes, str] = {}
        self._templates: dict[bytes, _Template] = {}

    def other_tags(self) -> list[str]:
        """Tags whose first metadata named a plugin other than scalars (for a cursor)."""
        return sorted(t for t, p in self.plugins.items() if p and p != SCALARS_PLUGIN)

    def decode(self, payloads: list[bytes], offsets: list[int], name: str, out: Points) -> None:
        """Append the scalars of ``payloads`` (records at ``offsets`` of file ``name``) to
        ``out``."""
        templates = self._templates
        wall_time = _DOUBLE
        for data, offset in zip(payloads, offsets, strict=True):
            try:
                # Fast path: `wall_time step summary{value{tag ...}}` with a known template.
                if len(data) > 20 and data[0] == 0x09:
                    if data[9] != 0x10:
                        step, pos = 0, 9
                    elif data[10] < 0x80:
                        step, pos = data[10], 11
                    elif data[11] < 0x80:
                        step, pos = (data[10] & 0x7F) | (data[11] << 7), 12
                    elif data[12] < 0x80:
                        step = (data[10] & 0x7F) | ((data[11] & 0x7F) << 7) | (data[12] << 14)
                        pos = 13
                    else:
                        step, pos = _step(data)
                    if len(data) > pos + 5 and data[pos] == 0x2A and data[pos + 4] == 0x0A:
                        tag_end = pos + 6 + data[pos + 5]
                        template = templates.get(data[pos:tag_end])
                        if template is not None:
                            size, before, where, after, unpack, tag = template
                            if (
                                len(data) - pos == size
                                and data.startswith(before, tag_end)
                                and data.endswith(after)
                            ):
                                points = out.get(tag)
                                if points is None:
                                    points = out[tag] = []
                                number = unpack(data, tag_end + where)[0]
                                points.append((step, wall_time(data, 1)[0], number))
                                continue
                single = self._event(data, out)
                if single is not None and len(templates) < _MAX_TEMPLATES:
                    self._learn(data, *single)
            except (IndexError, ValueError, struct.error) as err:
                raise CorruptEventFile(
                    f"{name}: malformed event in the record at byte offset {offset} ({err})"
                ) from None

    def _learn(self, data: bytes, tag: str, number: Number) -> None:
        """Make ``data`` a template if it is `wall_time step summary{one value}` with a fixed-size
        number, all lengths one byte long."""
        _, pos, unpack = number
        width = _WIDTH.get(unpack)
        if unpack is None or width is None or len(data) <= 20 or data[0] != 0x09:
            return
        start = _step(data)[1]
        size = len(data) - start
        if (
            size > 6
            and data[start] == 0x2A
            and data[start + 1] == size - 2
            and data[start + 2] == 0x0A
            and data[start + 3] == size - 4
            and data[start + 4] == 0x0A
            and data[start + 5] < 0x80
        ):
            tag_end = start + 6 + data[start + 5]
            if pos >= tag_end:
                self._templates[data[start:tag_end]] = (
                    size,
                    data[tag_end:pos],
                    pos - tag_end,
                    data[pos + width :],
                    unpack,
                    tag,
                )

    def _event(self, data: bytes, out: Points) -> tuple[str, Number] | None:
        """Parse one event into ``out``; its tag and number if it holds exactly one point."""
        wall_time = 0.0
        step = 0
        summaries = []
        pos = 0
        size = len(data)
        while pos < size:
            key = data[pos]
            pos += 1
            if key == 0x09:
                wall_time = _DOUBLE(data, pos)[0]
                pos += 8
            elif key == 0x10:
                step, pos = _varint(data, pos)
                step = _signed64(step)
            elif key == 0x2A:
                start, pos = _length(data, pos, size)
                summaries.append((start, pos))
            else:
                pos = _skip_field(data, pos - 1)
        if pos != size:
            raise ValueError("event overruns its record")
        values = 0
        single = None
        for pos, end in summaries:
            while pos < end:
                key = data[pos]
                pos += 1
                if key == 0x0A:
                    start, pos = _length(data, pos, end)
                    values += 1
                    single = self._value(data, start, pos, step, wall_time, out)
                else:
                    pos = _skip_field(data, pos - 1)
            if pos != end:
                raise ValueError("summary overruns its event")
        return single if values == 1 else None

    def _value(
        self, data: bytes, pos: int, end: int, step: int, wall_time: float, out: Points
    ) -> tuple[str, Number] | None:
        """Parse one ``Summary.Value``; its tag and number if it is a scalar."""
        tag = node_name = b""
        kind = _NONE
        simple = 0
        tensor: list[tuple[int, int]] = []
        metadata: list[tuple[int, int]] = []
        while pos < end:
            key = data[pos]
            pos += 1
            if key == 0x0A:
                start, pos = _length(data, pos, end)
                tag = data[start:pos]
            elif key == 0x15:
                simple = pos
                pos += 4
                kind = _SIMPLE
            elif key == 0x42:
                if kind != _TENSOR:
                    tensor = []
                    kind = _TENSOR
                tensor.append(_length(data, pos, end))
                pos = tensor[-1][1]
            elif key == 0x4A:
                metadata.append(_length(data, pos, end))
                pos = metadata[-1][1]
            elif key == 0x3A:
                start, pos = _length(data, pos, end)
                node_name = data[start:pos]
            elif key in (0x1A, 0x22, 0x2A, 0x32):  # old histogram, image, histo, audio
                pos = _length(data, pos, end)[1]
                kind = _OTHER
            else:
                pos = _skip_field(data, pos - 1)
        if pos != end:
            raise ValueError("value overruns its summary")
        if kind == _TENSOR and not tag:
            tag = node_name
        name = self._tags.get(tag)
        if name is None:
            name = self._tags[tag] = tag.decode("utf-8", "replace")
        if metadata and name not in self.plugins:
            self.plugins[name] = plugin_name(data, metadata)
        number: Number | None
        if kind == _SIMPLE:
            number = _FLOAT(data, simple)[0], simple, _FLOAT
        elif kind == _TENSOR and self.plugins.get(name, "") in ("", SCALARS_PLUGIN):
            number = tensor_scalar(data, tensor)
            if number is not None and name not in self.plugins:
                # Until its first metadata, whether the tag is a scalar may change: no template.
                number = number[0], number[1], None
        else:
            return None
        if number is None:
            return None
        points = out.get(name)
        if points is None:
            points = out[name] = []
        points.append((step, wall_time, number[0]))
        return name, number


def _step(data: bytes) -> tuple[int, int]:
    """The step of an event that starts with its wall_time, and where the next field starts."""
    if data[9] != 0x10:
        return 0, 9
    byte = data[10]
    if byte < 0x80:
        return byte, 11
    second = data[11]
    if second < 0x80:
        return (byte & 0x7F) | (second << 7), 12
    third = data[12]
    if third < 0x80:
        return (byte & 0x7F) | ((second & 0x7F) << 7) | (third << 14), 13
    step, pos = _varint(data, 10)
    return _signed64(step), pos
