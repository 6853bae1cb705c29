"""Semantic difference of two genotypes, after aligning them structurally.

State names and block order do not matter: inputs align by position; blocks align in dependency
order. A block that computes exactly what a B block computes (equal structural digests) matches it
at once; any other A block matches the unmatched B block that computes the most of the same thing
given the alignment so far (same combine, same ops on aligned inputs, operand order free in
commutative combines), searched among blocks that share its ops or inputs when there are many, so
that diffing stays linear in the size of the files. What remains is reported in words, in A's names:

    normal h3: second op sep_conv_3x3 → sep_conv_5x5
    reduction output: + h2
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from nasc.compiler import ir
from nasc.compiler.hashing import state_digests, structural_hash
from nasc.compiler.registry import COMBINES

ORDINALS = ("first", "second", "third", "fourth")


@dataclass(frozen=True)
class Change:
    cell: str
    kind: str  # op, input, combine, output_added, output_removed, block_added, block_removed, cell_added, ...
    state: str | None
    old: str | None
    new: str | None
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def _pairings(a: ir.Block, b: ir.Block) -> list[tuple[int, ...]]:
    """Ways to pair a's operands with b's: in order, and reversed where the combine is commutative."""
    order = tuple(range(len(b.operands)))
    if COMBINES[a.combine].commutative and COMBINES[b.combine].commutative and len(order) == 2:
        return [order, order[::-1]]
    return [order]


def _score(a: ir.Block, b: ir.Block, mapping: dict[str, str], pairing: tuple[int, ...]) -> int:
    score = 2 if a.combine == b.combine else 0
    for operand, index in zip(a.operands, pairing, strict=True):
        other = b.operands[index]
        score += 2 if operand.op == other.op else 0
        score += 3 if mapping.get(operand.input) == other.input else 0
    return score


def _best_pairing(a: ir.Block, b: ir.Block, mapping: dict[str, str]) -> tuple[int, tuple[int, ...]]:
    return max(((_score(a, b, mapping, p), p) for p in _pairings(a, b)), key=lambda item: item[0])


def _perfect(a: ir.Block) -> int:
    return 2 + 5 * len(a.operands)


# Past this many unmatched blocks, a block is scored only against candidates that share its ops or
# one of its (aligned) inputs, so that diffing two large files stays linear.
EXHAUSTIVE_LIMIT = 64


def _block_digests(cell: ir.Cell) -> dict[str, str]:
    """What each block computes, independent of names (the structural hash's per-state digests)."""
    states = state_digests(cell)
    return {block.target: states[block.target] for block in cell.blocks}


def _ops_key(block: ir.Block) -> tuple[str, ...]:
    return tuple(sorted(operand.op for operand in block.operands))


class _Indexes:
    """Block indexes in insertion order, with removal in O(1) amortized: a dict keeps the slots of
    removed keys until it grows, so iterating one that has lost most of its keys would cost their
    number each time; past as many removed as kept, the dict is rebuilt without them."""

    __slots__ = ("items", "removed")

    def __init__(self) -> None:
        self.items: dict[int, None] = {}
        self.removed = 0

    def add(self, index: int) -> None:
        self.items[index] = None

    def remove(self, index: int) -> None:
        del self.items[index]
        self.removed += 1
        if self.removed > len(self.items):
            self.items, self.removed = dict.fromkeys(self.items), 0

    def first(self) -> int:
        return next(iter(self.items))

    def __iter__(self) -> Iterator[int]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


NONE = _Indexes()  # what a key no block has finds


def _index_keys(block: ir.Block, digest: str, by_digest: dict, by_ops: dict, by_operand: dict) -> list:
    """The (table, key) pairs under which an unmatched B block is found."""
    keys = [(by_digest, digest), (by_ops, _ops_key(block))]
    reads = {(operand.op, operand.input): None for operand in block.operands}
    return keys + [(by_operand, read) for read in reads]


def diff_cells(a: ir.Cell, b: ir.Cell) -> list[Change]:
    changes: list[Change] = []
    if len(a.inputs) != len(b.inputs):
        changes.append(
            Change(
                a.kind,
                "inputs",
                None,
                str(len(a.inputs)),
                str(len(b.inputs)),
                f"{a.kind}: {len(a.inputs)} inputs → {len(b.inputs)}",
            )
        )
    mapping = dict(zip(a.inputs, b.inputs, strict=False))  # A name → B name
    reverse = {v: k for k, v in mapping.items()}  # B name → A name, kept in step with `mapping`
    unmatched: dict[int, ir.Block] = dict(enumerate(b.blocks))
    # Indexes of the unmatched B blocks (dicts as ordered sets): by what they compute, by their ops,
    # and by (op, the state it reads in B). A matched block leaves each of them at once, so many
    # identical blocks cost a look-up each, not a scan past all those matched before.
    by_digest: dict[str, _Indexes] = {}
    by_ops: dict[tuple[str, ...], _Indexes] = {}
    by_operand: dict[tuple[str, str], _Indexes] = {}
    digests_b = list(_block_digests(b).values())
    for index, other in unmatched.items():
        for table, key in _index_keys(other, digests_b[index], by_digest, by_ops, by_operand):
            table.setdefault(key, _Indexes()).add(index)
    digests_a = _block_digests(a) if len(a.inputs) == len(b.inputs) else {}

    def take(index: int) -> ir.Block:
        other = unmatched.pop(index)
        for table, key in _index_keys(other, digests_b[index], by_digest, by_ops, by_operand):
            table[key].remove(index)
        return other

    def candidates(block: ir.Block) -> list[int]:
        """B blocks worth scoring: all of them while few remain; else those that apply one of this
        block's ops to the aligned state (rarest first), then those with the same ops."""
        if len(unmatched) <= EXHAUSTIVE_LIMIT:
            return list(unmatched)
        keyed = [by_operand.get((o.op, mapping.get(o.input, "")), NONE) for o in block.operands]
        found: dict[int, None] = {}
        for entries in [*sorted(keyed, key=len), by_ops.get(_ops_key(block), NONE)]:
            if found and len(entries) > EXHAUSTIVE_LIMIT:
                break
            for index in entries:
                found[index] = None
                if len(found) >= EXHAUSTIVE_LIMIT:
                    return sorted(found)
        return sorted(found)

    for block in a.blocks:
        same = by_digest.get(digests_a.get(block.target, ""), NONE)
        if same:
            other = take(same.first())
            mapping[block.target], reverse[other.target] = other.target, block.target
            pairing = _best_pairing(block, other, mapping)[1]
            changes += _block_changes(a.kind, block, other, pairing, mapping, reverse)
            continue
        scored = [(_best_pairing(block, unmatched[i], mapping), i) for i in candidates(block)]
        best = max(scored, key=lambda c: (c[0][0], -c[1]), default=None)
        if best is None or best[0][0] * 2 < _perfect(block):  # less than half in common: a different block
            changes.append(
                Change(
                    a.kind, "block_removed", block.target, _text(block), None, f"{a.kind}: − {_text(block)}"
                )
            )
            continue
        (_, pairing), index = best
        other = take(index)
        mapping[block.target], reverse[other.target] = other.target, block.target
        changes += _block_changes(a.kind, block, other, pairing, mapping, reverse)
    for other in unmatched.values():
        changes.append(
            Change(a.kind, "block_added", other.target, None, _text(other), f"{a.kind}: + {_text(other)}")
        )
    a_members = set(a.output.members)
    b_members = {reverse.get(name, f"{name} (B)") for name in b.output.members}
    for name in sorted(a_members - b_members):
        changes.append(Change(a.kind, "output_removed", name, name, None, f"{a.kind} output: − {name}"))
    for name in sorted(b_members - a_members):
        changes.append(Change(a.kind, "output_added", name, None, name, f"{a.kind} output: + {name}"))
    return changes


def _text(block: ir.Block) -> str:
    from nasc.compiler.printer import format_block

    return format_block(block)


def _block_changes(
    cell: str,
    a: ir.Block,
    b: ir.Block,
    pairing: tuple[int, ...],
    mapping: dict[str, str],
    reverse: dict[str, str],
) -> list[Change]:
    changes = []
    label = a.target if a.target == b.target else f"{a.target} ({b.target} in B)"
    if a.combine != b.combine:
        changes.append(
            Change(
                cell,
                "combine",
                a.target,
                a.combine,
                b.combine,
                f"{cell} {label}: combine {a.combine} → {b.combine}",
            )
        )
    for position, (operand, index) in enumerate(zip(a.operands, pairing, strict=True)):
        other = b.operands[index]
        ordinal = ORDINALS[position] if position < len(ORDINALS) else f"#{position + 1}"
        if operand.op != other.op:
            changes.append(
                Change(
                    cell,
                    "op",
                    a.target,
                    operand.op,
                    other.op,
                    f"{cell} {label}: {ordinal} op {operand.op} → {other.op}",
                )
            )
        if mapping.get(operand.input) != other.input:
            new = reverse.get(other.input, f"{other.input} (B)")
            changes.append(
                Change(
                    cell,
                    "input",
                    a.target,
                    operand.input,
                    new,
                    f"{cell} {label}: {ordinal} input {operand.input} → {new}",
                )
            )
    return changes


def convention_change(a: str, b: str) -> list[Change]:
    """The change of convention between two files (of cells or of spaces), if any."""
    return [Change("", "convention", None, a, b, f"convention {a} → {b}")] if a != b else []


def diff(a: ir.Genotype, b: ir.Genotype) -> list[Change]:
    """The changes that turn architecture A into B (empty when they are the same architecture)."""
    if structural_hash(a) == structural_hash(b):
        return []
    # the same cells read by another convention are another network
    changes: list[Change] = convention_change(a.convention, b.convention)
    kinds_b = {cell.kind: cell for cell in b.cells}
    for cell in a.cells:
        if cell.kind not in kinds_b:
            changes.append(Change(cell.kind, "cell_removed", None, cell.kind, None, f"− {cell.kind} cell"))
        else:
            changes += diff_cells(cell, kinds_b[cell.kind])
    kinds_a = {cell.kind for cell in a.cells}
    for cell in b.cells:
        if cell.kind not in kinds_a:
            changes.append(Change(cell.kind, "cell_added", None, None, cell.kind, f"+ {cell.kind} cell"))
    return changes
