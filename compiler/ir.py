"""The Genotype IR: frozen, checked, free of Lark types. Spans ride along but never affect equality.

Every name in the IR is a safe identifier (checked on construction), so anything built from it —
including by the search controller, without a parser in between — can be emitted into Python.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import field

from nasc.compiler.registry import COMBINES, OPS, OUTPUT_COMBINE
from nasc.diagnostics import Span, span_field
from nasc.nodes import frozen_node

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls but \t \n \r


# Names accepted so far. A file reuses a handful (`h0`, `sep_conv_3x3`, …) hundreds of times, and
# the parser, the checker and the IR's own invariants each ask; bounded so hostile input cannot grow
# it without limit.
_ACCEPTED: set[str] = set()
_ACCEPTED_LIMIT = 4096


def identifier_problem(name: str) -> str | None:
    """Why `name` cannot be a nasc identifier, or None if it can."""
    if name in _ACCEPTED:
        return None
    problem = _identifier_problem(name)
    if problem is None and len(_ACCEPTED) < _ACCEPTED_LIMIT:
        _ACCEPTED.add(name)
    return problem


def _identifier_problem(name: str) -> str | None:
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        return f"`{name}` is not a name (letters, digits and `_`, not starting with a digit)"
    if keyword.iskeyword(name):
        return f"`{name}` is a Python keyword"
    if name.startswith("__"):
        return f"`{name}` starts with `__`, which is reserved"
    return None


def _require_identifier(name: str) -> None:
    if name in _ACCEPTED:  # the common case, without a call
        return
    problem = identifier_problem(name)
    if problem:
        raise ValueError(problem)


@frozen_node
class Comments:
    """Comments attached to one line of the source: those on lines above it, and the one at its end."""

    leading: tuple[str, ...] = ()
    trailing: str | None = None

    def __post_init__(self) -> None:
        for text in (*self.leading, *([self.trailing] if self.trailing else [])):
            if not text.startswith("#") or "\n" in text or "\r" in text:
                raise ValueError(f"not a one-line comment: {text!r}")


NO_COMMENTS = Comments()


@frozen_node
class Operand:
    op: str
    input: str
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}")
        _require_identifier(self.input)


@frozen_node
class Block:
    target: str
    combine: str
    operands: tuple[Operand, ...]
    comments: Comments = NO_COMMENTS
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        _require_identifier(self.target)
        spec = COMBINES.get(self.combine)
        if spec is None:
            raise ValueError(f"unknown combine {self.combine!r}")
        # How many operands a block has is its convention's rule (compiler/check.py); the IR asks
        # only for one, and a backend refuses a shape it cannot build.
        if not self.operands:
            raise ValueError(f"{self.combine} needs an operand")

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(operand.input for operand in self.operands)


@frozen_node
class Output:
    members: tuple[str, ...]
    combine: str = OUTPUT_COMBINE
    comments: Comments = NO_COMMENTS
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        if self.combine != OUTPUT_COMBINE:
            raise ValueError(f"a cell output is a {OUTPUT_COMBINE}")
        if not self.members:
            raise ValueError("a cell output needs at least one state")
        for member in self.members:
            _require_identifier(member)


@frozen_node
class Cell:
    kind: str
    inputs: tuple[str, ...]
    blocks: tuple[Block, ...]
    output: Output
    comments: Comments = NO_COMMENTS
    close_comments: Comments = NO_COMMENTS  # comments before the closing `}` and on its line
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        _require_identifier(self.kind)
        for name in self.inputs:
            _require_identifier(name)
        defined = set(self.inputs)
        if len(defined) != len(self.inputs):
            raise ValueError("a cell input is declared twice")
        for block in self.blocks:
            for operand in block.operands:
                if operand.input not in defined:
                    raise ValueError(f"block {block.target} uses {operand.input} before it is defined")
            if block.target in defined:
                raise ValueError(f"{block.target} is defined twice")
            defined.add(block.target)
        for member in self.output.members:
            if member not in defined:
                raise ValueError(f"output {member} is not defined")

    def block(self, target: str) -> Block:
        return next(b for b in self.blocks if b.target == target)


MetaValue = str | int | float


@frozen_node
class MetaEntry:
    key: str
    value: MetaValue
    comments: Comments = NO_COMMENTS
    span: Span | None = span_field()

    def __post_init__(self) -> None:
        _require_identifier(self.key)
        if isinstance(self.value, bool) or not isinstance(self.value, (str, int, float)):
            raise ValueError(
                f"metadata {self.key} must be a string or a number, not {type(self.value).__name__}"
            )
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise ValueError(f"metadata {self.key} must be a finite number")
        if isinstance(self.value, str) and _CONTROL.search(self.value):
            raise ValueError(f"metadata {self.key} holds a control character")


@frozen_node
class Genotype:
    name: str
    cells: tuple[Cell, ...]
    metadata: tuple[MetaEntry, ...] = ()
    comments: Comments = NO_COMMENTS  # on and above the `genotype` line
    meta_comments: Comments = NO_COMMENTS  # on and above the `meta {` line
    meta_close_comments: Comments = NO_COMMENTS
    footer: tuple[str, ...] = ()  # comments after the last cell
    convention: str = "nasnet"  # the network convention that reads the cells (`genotype NAME : CONV`)
    filename: str | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _require_identifier(self.name)
        _require_identifier(self.convention)
        kinds = [cell.kind for cell in self.cells]
        if len(set(kinds)) != len(kinds):
            raise ValueError("a cell kind appears twice")
        keys = [entry.key for entry in self.metadata]
        if len(set(keys)) != len(keys):
            raise ValueError("a metadata key appears twice")

    def cell(self, kind: str) -> Cell:
        for cell in self.cells:
            if cell.kind == kind:
                return cell
        raise KeyError(kind)

    def meta(self, key: str, default: MetaValue | None = None) -> MetaValue | None:
        return next((entry.value for entry in self.metadata if entry.key == key), default)
