"""What changed between two spaces, node by node and edge by edge. A space is ordered (an edge's
candidates are the columns of its architecture weights, its edges their rows), so nodes and edges
are compared by position; states are compared by position too, and shown with the second's names."""

from __future__ import annotations

from nasc.compiler.diff import Change, convention_change
from nasc.compiler.space_ir import Space, SpaceCell


def _names(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def _positions(cell: SpaceCell, states: tuple[str, ...]) -> tuple[int, ...]:
    order = cell.states
    return tuple(order.index(s) if s in order else -1 for s in states)


def _ops_change(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    added = [op for op in new if op not in old]
    removed = [op for op in old if op not in new]
    parts = [f"+ {_names(tuple(added))}" if added else "", f"− {_names(tuple(removed))}" if removed else ""]
    return "; ".join(part for part in parts if part) or "reordered"


def _cell_changes(kind: str, a: SpaceCell, b: SpaceCell, said: set[str]) -> list[Change]:
    """`said`: sets whose change is reported once; an edge that names one on both sides is not
    reported again for it."""
    changes: list[Change] = []

    def change(what: str, state: str | None, old: object, new: object, text: str) -> None:
        changes.append(Change(kind, what, state, str(old), str(new), f"{kind} {text}"))

    if len(a.inputs) != len(b.inputs):
        change("inputs", None, len(a.inputs), len(b.inputs), f"inputs: {len(a.inputs)} → {len(b.inputs)}")
    for index in range(max(len(a.nodes), len(b.nodes))):
        if index >= len(a.nodes):
            change(
                "node_added",
                b.nodes[index].target,
                None,
                b.nodes[index].target,
                f"+ node {b.nodes[index].target}",
            )
            continue
        if index >= len(b.nodes):
            change(
                "node_removed",
                a.nodes[index].target,
                a.nodes[index].target,
                None,
                f"− node {a.nodes[index].target}",
            )
            continue
        old, new = a.nodes[index], b.nodes[index]
        target = new.target
        if old.combines != new.combines:
            change(
                "combines",
                target,
                old.combines,
                new.combines,
                f"{target}: combines [{_names(old.combines)}] → [{_names(new.combines)}]",
            )
        if old.keep != new.keep:
            change(
                "keep",
                target,
                old.keep,
                new.keep,
                f"{target}: keep {old.keep or 'all'} → {new.keep or 'all'}",
            )
        if len(old.edges) != len(new.edges):
            change(
                "edges",
                target,
                len(old.edges),
                len(new.edges),
                f"{target}: {len(old.edges)} edges → {len(new.edges)}",
            )
        for position, (e, f) in enumerate(zip(old.edges, new.edges, strict=False)):  # the rest: "edges"
            where = f"{target} edge {position + 1}"
            if _positions(a, e.inputs) != _positions(b, f.inputs):
                change(
                    "inputs",
                    target,
                    e.inputs,
                    f.inputs,
                    f"{where}: reads [{_names(e.inputs)}] → [{_names(f.inputs)}]",
                )
            if e.ops != f.ops and not (e.op_set is not None and e.op_set == f.op_set and e.op_set in said):
                change("ops", target, e.ops, f.ops, f"{where}: ops {_ops_change(e.ops, f.ops)}")
    if a.outputs_unused != b.outputs_unused or _positions(a, a.output.members) != _positions(
        b, b.output.members
    ):
        change(
            "output",
            None,
            a.output.members,
            b.output.members,
            f"output: [{_names(a.output.members)}] → [{_names(b.output.members)}]",
        )
    return changes


def diff_spaces(a: Space, b: Space) -> list[Change]:
    changes = convention_change(a.convention, b.convention)
    sets_a, sets_b = {s.name: s.members for s in a.sets}, {s.name: s.members for s in b.sets}
    said = set()
    for name in [*sets_a, *(n for n in sets_b if n not in sets_a)]:
        old, new = sets_a.get(name), sets_b.get(name)
        if old is not None and new is not None and old != new:
            said.add(name)
            changes.append(
                Change("", "set", name, _names(old), _names(new), f"set {name}: {_ops_change(old, new)}")
            )
    kinds = [c.kind for c in a.cells] + [c.kind for c in b.cells if c.kind not in {x.kind for x in a.cells}]
    for kind in kinds:
        in_a = next((c for c in a.cells if c.kind == kind), None)
        in_b = next((c for c in b.cells if c.kind == kind), None)
        if in_a is None or in_b is None:
            sign, what = ("+", "cell_added") if in_a is None else ("−", "cell_removed")
            changes.append(Change(kind, what, None, None, None, f"{sign} cell {kind}"))
            continue
        changes += _cell_changes(kind, in_a, in_b, said)
    return changes
