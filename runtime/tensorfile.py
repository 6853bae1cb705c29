"""Files of tensors read as data, never as code: everything nasc reads back from disk that torch
wrote (a reference network's checkpoint, `--weights`, a training run's checkpoint, a search's
state) comes through here.

- The path must be a regular file: a directory, a FIFO or a device is refused before it is opened
  (a FIFO would block the read forever).
- The format is told by content, not by name: torch's zip archive, torch's legacy pickle stream,
  or safetensors (a safetensors file named `.pt` is read as safetensors).
- A zip archive whose entries would expand far past the file's own size is refused before torch
  inflates any of it: torch.save never compresses, so a compressed archive is either re-packed by
  hand or a zip bomb.
- Pickles are read with `weights_only=True`: tensors, plain containers and numbers, plus the types a
  caller allows by name. A refusal is said in nasc's words: torch's own message suggests turning
  the protection off.
- Tensors without data (the meta device) and non-strided tensors (sparse, nested) are refused.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence

import torch

from nasc.diagnostics import first_line

# A deflated archive of float weights expands by a few percent; a bomb by a factor of hundreds.
MAX_EXPANSION = 4
EXPANSION_SLACK = 1 << 20

ZIP_MAGIC = b"PK\x03\x04"
# safetensors: an 8-byte little-endian header length, then the JSON header.
SAFETENSORS_HEADER = struct.Struct("<Q")
MAX_HEADER = 100_000_000  # the safetensors format's own limit


class TensorFileError(Exception):
    """The file cannot be read as tensors; the message says why in one line (without the path)."""


def read_tensor_file(path: str | os.PathLike[str], *, allowed: Sequence[object] = ()) -> object:
    """What the file holds (for safetensors: its dict of tensors), read without running code from
    it. `allowed`: further globals (classes, functions) a pickle may name, beyond torch's defaults."""
    size = _regular_file_size(path)
    kind = _sniff(path)
    if kind == "safetensors":
        return _read_safetensors(path)
    if kind == "zip":
        _check_expansion(path, size)
    try:
        # torch warns about what it finds inside (sparse invariants, storage types) in words meant
        # for its own developers, naming its source files; what matters is said below, once.
        with torch.serialization.safe_globals(list(allowed)), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise TensorFileError(_refusal(error)) from None
    except Exception as error:  # torch raises many types for damaged files; none of them is a bug here
        raise TensorFileError(f"not a file of tensors nasc can read ({first_line(error)})") from None
    for name, tensor in tensors_in(loaded):
        _check_storage(name, tensor)
    return loaded


def _regular_file_size(path: str | os.PathLike[str]) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise TensorFileError("no such file") from None
    except OSError as error:
        raise TensorFileError(f"cannot read it: {(error.strerror or str(error)).lower()}") from None
    if stat.S_ISDIR(info.st_mode):
        raise TensorFileError("is a directory, not a file of tensors")
    if not stat.S_ISREG(info.st_mode):
        raise TensorFileError("is not a regular file (a FIFO, socket or device); give a checkpoint file")
    return info.st_size


def _sniff(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as error:
        raise TensorFileError(f"cannot read it: {(error.strerror or str(error)).lower()}") from None
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if len(head) == 9 and head[8:9] == b"{" and SAFETENSORS_HEADER.unpack(head[:8])[0] < MAX_HEADER:
        return "safetensors"
    if not head:
        raise TensorFileError("is empty")
    return "legacy"


def _check_expansion(path: str | os.PathLike[str], size: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise TensorFileError(f"not a file of tensors nasc can read (zip: {first_line(error)})") from None
    if expanded > MAX_EXPANSION * size + EXPANSION_SLACK:
        raise TensorFileError(
            f"refused: its zip entries expand to {_bytes(expanded)} from a file of {_bytes(size)} "
            "(torch.save never compresses; a zip bomb?)"
        )


def _read_safetensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise TensorFileError(
            "is a safetensors file, which needs the safetensors package: pip install safetensors"
        ) from None
    try:
        return load_file(os.fspath(path))
    except Exception as error:  # safetensors raises its own types for every kind of damage
        raise TensorFileError(f"not a readable safetensors file ({first_line(error)})") from None


_UNSUPPORTED = re.compile(r"Unsupported (?:global|class|operand)[^\n]*?(?:GLOBAL )?([\w.]+)")


def _refusal(error: pickle.UnpicklingError) -> str:
    """torch's weights-only refusal as nasc says it; any other unpickling error as damage."""
    message = str(error)
    if "Weights only load failed" not in message:
        return f"not a file of tensors nasc can read ({first_line(error)})"
    named = _UNSUPPORTED.search(message)
    what = f" ({named.group(1)})" if named else ""
    return (
        f"refused: it holds Python objects{what}, not only tensors and plain data; unpickling them "
        "could run code, so nasc does not"
    )


def tensors_in(value: object, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside nested dicts, lists and tuples, with a dotted name for messages."""
    if isinstance(value, torch.Tensor):
        yield prefix or "<tensor>", value
    elif depth < 32 and isinstance(value, Mapping):
        for key, item in value.items():
            yield from tensors_in(item, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif depth < 32 and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from tensors_in(item, f"{prefix}.{index}" if prefix else str(index), depth + 1)


def _check_storage(name: str, tensor: torch.Tensor) -> None:
    if tensor.is_meta:
        raise TensorFileError(f"tensor {name} has no data (it was saved on the meta device)")
    if tensor.layout != torch.strided:
        raise TensorFileError(f"tensor {name} is {tensor.layout}, not a dense tensor")


def converted(name: str, theirs: torch.Tensor, ours: torch.Tensor) -> torch.Tensor:
    """A file's tensor in the dtype of the network's tensor it becomes. Floating point converts to
    floating point (float64 or half weights are common) and integers to integers; anything else
    (complex, bool, integers as weights) would change the values, and is refused, as are weights
    that are not finite."""
    if theirs.dtype != ours.dtype and not _same_kind(theirs.dtype, ours.dtype):
        raise TensorFileError(
            f"tensor {name} is {_dtype(theirs.dtype)} where the network's is {_dtype(ours.dtype)}"
        )
    if theirs.is_floating_point():
        finite = torch.isfinite(theirs)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise TensorFileError(
                f"tensor {name} holds {bad:,} of {theirs.numel():,} values that are NaN or infinite"
            )
    return theirs.to(ours.dtype).clone()


def _same_kind(a: torch.dtype, b: torch.dtype) -> bool:
    def kind(dtype: torch.dtype) -> str:
        if dtype.is_complex:
            return "complex"
        if dtype.is_floating_point:
            return "float"
        return "bool" if dtype == torch.bool else "integer"

    return kind(a) == kind(b)


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _bytes(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
