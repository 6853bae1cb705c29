"""Semantic difference of two genotypes, after aligning them structurally.

State names and block order do not matter: inputs align by position; blocks align in dependency
order, each A block with the unmatched B block that computes the most of the same thing given the
alignment so far (same combine, same ops on aligned inputs, operand order free in commutative
combines). What remains is reported in words, in A's names:

    normal h3: second op sep_conv_3x3 → sep_conv_5x5
    reduction output: + h2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nasc.compiler import ir
from nasc.compiler.hashing import structural_hash
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
    unmatched = list(b.blocks)
    for block in a.blocks:
        candidates = [
            (_best_pairing(block, other, mapping), index, other) for index, other in enumerate(unmatched)
        ]
        if not candidates:
            changes.append(
                Change(
                    a.kind, "block_removed", block.target, _text(block), None, f"{a.kind}: − {_text(block)}"
                )
            )
            continue
        ((score, pairing), index, other) = max(candidates, key=lambda c: (c[0][0], -c[1]))
        if score * 2 < _perfect(block):  # less than half in common: a different block
            changes.append(
                Change(
                    a.kind, "block_removed", block.target, _text(block), None, f"{a.kind}: − {_text(block)}"
                )
            )
            continue
        unmatched.pop(index)
        mapping[block.target] = other.target
        changes += _block_changes(a.kind, block, other, pairing, mapping)
    reverse = {v: k for k, v in mapping.items()}
    for other in unmatched:
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
    cell: str, a: ir.Block, b: ir.Block, pairing: tuple[int, ...], mapping: dict[str, str]
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
    reverse = {v: k for k, v in mapping.items()}
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


def diff(a: ir.Genotype, b: ir.Genotype) -> list[Change]:
    """The changes that turn architecture A into B (empty when they are the same architecture)."""
    if structural_hash(a) == structural_hash(b):
        return []
    changes: list[Change] = []
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
