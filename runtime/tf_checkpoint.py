"""TensorFlow checkpoints read as data: the V2 "bundle" TF-slim, the TPU models and `tf.train.Saver`
write (`PREFIX.index` + `PREFIX.data-SSSSS-of-NNNNN`), without TensorFlow and without running code.

nasc reads the format itself rather than through TensorFlow (a dependency of hundreds of MB, and a
C++ parser of untrusted input behind it) because the format is small:
- the index is a LevelDB table (tensorflow/core/lib/io/table_builder.cc): blocks of prefix-compressed
  keys, each block followed by its compression type and masked CRC-32C, a footer of two block
  handles and a magic number; its keys are variable names, its values `BundleEntryProto`s (dtype,
  shape, shard, offset, size, CRC-32C of the bytes; tensorflow/core/protobuf/tensor_bundle.proto),
  and the empty key holds the `BundleHeaderProto` (shards, endianness);
- a data shard holds each tensor's bytes, little-endian, at its entry's offset.

Every length, offset and size is checked against the file before it is used, every block's and
every tensor's checksum is verified, and a tensor is read only when asked for. The tests hold this
reader to TensorFlow's own (`tf.train.load_checkpoint`) on checkpoints TensorFlow wrote.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c  # Google's CRC-32C, in C where the platform has a wheel
import numpy as np
import torch

MAGIC = 0xDB4775248B80FB57  # LevelDB's table magic number, as TF's table format keeps it
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the magic number
BLOCK_TRAILER = 5  # compression type (1 byte), masked CRC-32C (4 bytes)
MAX_INDEX_BYTES = 1 << 30
# tensorflow/core/framework/types.proto: the numeric dtypes a network's variables take
DTYPES = {
    1: ("float32", np.dtype("<f4")),
    2: ("float64", np.dtype("<f8")),
    3: ("int32", np.dtype("<i4")),
    4: ("uint8", np.dtype("u1")),
    5: ("int16", np.dtype("<i2")),
    6: ("int8", np.dtype("i1")),
    9: ("int64", np.dtype("<i8")),
    10: ("bool", np.dtype("?")),
    14: ("bfloat16", np.dtype("<u2")),  # read as its bits, then viewed as torch.bfloat16
    17: ("uint16", np.dtype("<u2")),
    19: ("float16", np.dtype("<f2")),
}
NUMPY_DTYPE = dict(DTYPES.values())  # TF's name → how its bytes read
NAMES_OF_OTHER_DTYPES = {7: "string", 8: "complex64", 18: "complex128", 20: "resource", 21: "variant"}


class BundleError(Exception):
    """The files are not a TensorFlow checkpoint nasc can read; the message says why, in one line."""


@dataclass(frozen=True)
class Entry:
    name: str
    dtype: str  # TF's name: float32, int64, string, ...
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None  # masked, as TF stores it
    partitioned: bool  # a variable saved in slices (a partitioned variable): not read by nasc


# -- the index: a LevelDB table --------------------------------------------------------------------


def _varint(data: bytes, position: int, limit: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= limit or shift > 63:
            raise BundleError("the index is damaged (a number runs past its block)")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _crc32c(data: bytes) -> int:
    return google_crc32c.value(data)


def _block(index: bytes, handle: tuple[int, int], what: str) -> bytes:
    offset, size = handle
    if offset + size + BLOCK_TRAILER > len(index) - FOOTER_SIZE:
        raise BundleError(f"the index is truncated or damaged (its {what} lies past its end)")
    contents = index[offset : offset + size]
    kind, crc = index[offset + size], struct.unpack_from("<I", index, offset + size + 1)[0]
    if _masked(_crc32c(index[offset : offset + size + 1])) != crc:
        raise BundleError(f"the index is damaged (its {what} fails its checksum)")
    if kind != 0:
        raise BundleError(
            f"the index's {what} is compressed (type {kind}); TensorFlow writes checkpoint indexes "
            "uncompressed, so this is not one nasc can read"
        )
    return contents


def _entries(block: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs of one table block, in order."""
    if len(block) < 4:
        raise BundleError(f"the index is damaged (its {what} is too short)")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise BundleError(f"the index is damaged (its {what} has an impossible restart count)")
    position, key = 0, b""
    while position < limit:
        shared, position = _varint(block, position, limit)
        unshared, position = _varint(block, position, limit)
        length, position = _varint(block, position, limit)
        if shared > len(key) or position + unshared + length > limit:
            raise BundleError(f"the index is damaged (an entry of its {what} runs past the block)")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        yield key, block[position : position + length]
        position += length


def _handle(data: bytes, position: int, limit: int) -> tuple[tuple[int, int], int]:
    offset, position = _varint(data, position, limit)
    size, position = _varint(data, position, limit)
    return (offset, size), position


def _table(index: bytes) -> Iterator[tuple[bytes, bytes]]:
    if len(index) < FOOTER_SIZE or struct.unpack_from("<Q", index, len(index) - 8)[0] != MAGIC:
        raise BundleError("the index is truncated or not a TensorFlow checkpoint index (no table footer)")
    footer = len(index) - FOOTER_SIZE
    _, position = _handle(index, footer, footer + 40)  # the metaindex: TF's bundles keep nothing there
    index_handle, _ = _handle(index, position, footer + 40)
    for _, value in _entries(_block(index, index_handle, "block index"), "block index"):
        handle, _ = _handle(value, 0, len(value))
        yield from _entries(_block(index, handle, "data block"), "data block")


# -- the values: protocol buffers, read field by field --------------------------------------------


def _fields(message: bytes) -> dict[int, list[int | bytes]]:
    """A protocol buffer message's fields by number (varints and fixed ints as ints, the rest bytes)."""
    fields: dict[int, list[int | bytes]] = {}
    position = 0
    while position < len(message):
        tag, position = _varint(message, position, len(message))
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = _varint(message, position, len(message))
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if position + width > len(message):
                raise BundleError("the index is damaged (a field runs past its entry)")
            value = int.from_bytes(message[position : position + width], "little")
            position += width
        elif wire == 2:
            length, position = _varint(message, position, len(message))
            if position + length > len(message):
                raise BundleError("the index is damaged (a field runs past its entry)")
            value, position = message[position : position + length], position + length
        else:
            raise BundleError(f"the index is damaged (field {number} has wire type {wire})")
        fields.setdefault(number, []).append(value)
    return fields


def _one(fields: dict[int, list[int | bytes]], number: int, default: int | bytes = 0) -> int | bytes:
    values = fields.get(number)
    return values[-1] if values else default


def _shape(message: bytes) -> tuple[int, ...]:
    fields = _fields(message)
    if _one(fields, 3):
        raise BundleError("a variable has an unknown rank")
    dims = []
    for dim in fields.get(2, []):
        size = _one(_fields(dim), 1)
        if size >= 1 << 63:  # int64 -1: an unknown dimension
            raise BundleError("a variable has a dimension of unknown size")
        dims.append(int(size))
    return tuple(dims)


def _entry(name: str, message: bytes) -> Entry:
    fields = _fields(message)
    code = int(_one(fields, 1))
    dtype = DTYPES[code][0] if code in DTYPES else NAMES_OF_OTHER_DTYPES.get(code, f"dtype {code}")
    crc = fields.get(6)
    return Entry(
        name=name,
        dtype=dtype,
        shape=_shape(_one(fields, 2, b"")),
        shard=int(_one(fields, 3)),
        offset=int(_one(fields, 4)),
        size=int(_one(fields, 5)),
        crc32c=int(crc[-1]) if crc else None,
        partitioned=bool(fields.get(7)),
    )


# -- the bundle ------------------------------------------------------------------------------------


def checkpoint_prefix(path: str | os.PathLike[str]) -> Path:
    """The prefix TF names a checkpoint by, also from its `.index`, one of its data files, or the
    directory that holds it alone (as the published archives unpack)."""
    text = os.fspath(path)
    if os.path.isdir(text):
        indexes = sorted(Path(text).glob("*.index"))
        if len(indexes) != 1:
            found = f"{len(indexes)} checkpoints" if indexes else "no checkpoint"
            raise BundleError(
                f"is a directory with {found} (*.index): give the checkpoint's prefix, DIR/model.ckpt"
            )
        return indexes[0].with_suffix("")
    if text.endswith(".index"):
        return Path(text.removesuffix(".index"))
    head, dot, tail = text.rpartition(".data-")
    if dot and len(tail) == 14 and tail[5:9] == "-of-" and (tail[:5] + tail[9:]).isdigit():
        return Path(head)
    return Path(text)


def _regular_size(path: Path, what: str) -> int:
    """The size of the index or a data shard, which must be a regular file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BundleError(f"{what} {path.name} is missing") from None
    except OSError as error:
        raise BundleError(
            f"cannot read {what} {path.name}: {(error.strerror or str(error)).lower()}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{what} {path.name} is not a regular file")
    return info.st_size


class Bundle:
    """A checkpoint's variables: `entries` by name (from the index alone); `read(name)` the tensor."""

    def __init__(self, path: str | os.PathLike[str]):
        self.prefix = checkpoint_prefix(path)
        index_path = Path(f"{self.prefix}.index")
        size = _regular_size(index_path, "the index")
        if size > MAX_INDEX_BYTES:
            raise BundleError(f"the index {index_path.name} is {size:,} bytes, more than an index can be")
        index = index_path.read_bytes()
        self.entries: dict[str, Entry] = {}
        header = None
        for key, value in _table(index):
            if key == b"":
                header = _fields(value)
            elif not key.startswith(b"\x00"):  # keys from \x00 on name the slices of partitioned variables
                try:
                    name = key.decode("utf-8")
                except UnicodeDecodeError:
                    raise BundleError("the index is damaged (a variable name is not UTF-8)") from None
                self.entries[name] = _entry(name, value)
        if header is None:
            raise BundleError("the index has no bundle header: not a TensorFlow V2 checkpoint")
        if _one(header, 2):
            raise BundleError("the checkpoint was written big-endian; nasc reads little-endian ones")
        self.shards = int(_one(header, 1, 1))
        for entry in self.entries.values():
            if not 0 <= entry.shard < self.shards:
                raise BundleError(f"variable {entry.name} names data shard {entry.shard} of {self.shards}")
        self._sizes: dict[int, int] = {}

    def data_file(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.shards:05d}")

    def read(self, name: str) -> torch.Tensor:
        entry = self.entries[name]
        if entry.partitioned:
            raise BundleError(f"variable {name} is saved in slices (partitioned); nasc reads whole variables")
        if entry.dtype not in NUMPY_DTYPE:
            raise BundleError(f"variable {name} is of dtype {entry.dtype}, not a numeric tensor")
        dtype = NUMPY_DTYPE[entry.dtype]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if entry.size != count * dtype.itemsize:
            raise BundleError(f"variable {name} has {entry.size:,} bytes for {count:,} {entry.dtype} values")
        data = self._bytes(entry)
        if entry.crc32c is not None and _masked(_crc32c(data)) != entry.crc32c:
            raise BundleError(f"variable {name} fails its checksum: the data file is damaged")
        array = np.frombuffer(data, dtype=dtype, count=count).astype(dtype.newbyteorder("="))  # one copy
        tensor = torch.from_numpy(array.reshape(entry.shape))
        return tensor.view(torch.bfloat16) if entry.dtype == "bfloat16" else tensor

    def _bytes(self, entry: Entry) -> bytes:
        path = self.data_file(entry.shard)
        if entry.shard not in self._sizes:
            self._sizes[entry.shard] = _regular_size(path, "data shard")
        if entry.offset + entry.size > self._sizes[entry.shard]:
            raise BundleError(f"data shard {path.name} is truncated: variable {entry.name} lies past its end")
        with open(path, "rb") as handle:
            handle.seek(entry.offset)
            return handle.read(entry.size)
