"""TFRecord framing of event files: split a buffer into checked record payloads.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little-endian. Checksums use ``google_crc32c`` (hardware CRC32C where the CPU has it).
"""

from __future__ import annotations

import struct

from google_crc32c import value as crc32c

from ..exceptions import CloudMLError

HEADER_SIZE = 12
FOOTER_SIZE = 4
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_U32 = struct.Struct("<I")


class CorruptEventFile(CloudMLError):
    """An event file holds a record whose checksum or content is wrong."""


def masked_crc32c(data: bytes) -> int:
    """TensorFlow's masked CRC32C of ``data`` (rotated so CRCs of CRCs stay well spread)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record holding ``data``, as a writer appends it."""
    length = struct.pack("<Q", len(data))
    return length + _U32.pack(masked_crc32c(length)) + data + _U32.pack(masked_crc32c(data))


def split_records(buf: bytes, name: str, base: int = 0) -> tuple[list[bytes], list[int], int]:
    """Checked payloads of the complete records at the start of ``buf``, their offsets, and the
    length of ``buf`` they take: after it comes at most a record a writer is midway through.

    ``buf`` holds file ``name`` from byte ``base`` on; offsets are the file's. A bad checksum
    raises ``CorruptEventFile`` naming the file and the record's byte offset.
    """
    pos = 0
    payloads: list[bytes] = []
    offsets: list[int] = []
    size = len(buf)
    # A header's checksum depends on the length alone, and few lengths occur: check each once.
    lengths: dict[bytes, int] = {}
    unpack_u32 = _U32.unpack_from
    while pos + HEADER_SIZE <= size:
        header = buf[pos : pos + HEADER_SIZE]
        length = lengths.get(header)
        if length is None:
            length, header_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != header_crc:
                raise CorruptEventFile(f"{name}: corrupt record header at byte offset {base + pos}")
            lengths[header] = length
        start = pos + HEADER_SIZE
        stop = start + length
        if stop + FOOTER_SIZE > size:
            break
        data = buf[start:stop]
        crc = crc32c(data)  # masked_crc32c inlined: this runs for every record
        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF != unpack_u32(buf, stop)[0]:
            raise CorruptEventFile(f"{name}: corrupt record data at byte offset {base + pos}")
        payloads.append(data)
        offsets.append(base + pos)
        pos = stop + FOOTER_SIZE
    return payloads, offsets, pos
