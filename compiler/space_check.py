"""Syntax tree of a `space` file to Space IR. Finds every mistake, as the cell checker does, with
which it shares names, metadata, conventions and scopes (compiler/check.py)."""

from __future__ import annotations

from nasc.compiler import ir
from nasc.compiler.check import _attach_comments, _Checker, _meta_entries
from nasc.compiler.registry import COMBINES, OPS, OUTPUT_COMBINE
from nasc.compiler.space_ir import UNUSED, ChoiceSet, Edge, Node, Space, SpaceCell
from nasc.diagnostics import Span, did_you_mean
from nasc.grammar import syntax as st

NODE_SHAPE = (
    "a node reads `h2 = add(ops(h0), ops(h1)) keep 2` (DARTS) or "
    "`h2 = combines(ops([h0, h1]), ops([h0, h1]))` (NASNet)"
)
ZERO_OP = "none"


class _SpaceChecker(_Checker):
    sets: dict[str, tuple[str, ...]]

    def space(self, module: st.Module) -> None:
        self.identifier(module.name, "space name")
        if module.convention is not None:
            self.resolve_convention(module.convention)
        if module.metadata is not None:
            self.metadata(module.metadata)
        self.sets = {}
        for declared in module.sets:
            self.choice_set(declared)
        self.cells(module, "space", self.space_cell)

    def choice_set(self, declared: st.ChoiceSet) -> None:
        name = declared.name.text
        self.identifier(declared.name, "set name")
        if name in self.sets:
            self.error(f"set `{name}` is given twice", declared.name.span, hint="keep one")
            return
        if name in OPS or name in COMBINES:
            self.error(
                f"set `{name}` has the name of {'an op' if name in OPS else 'a combine'}",
                declared.name.span,
                hint="name it for what it holds, e.g. `ops` or `combines`",
            )
        members = self.members(declared.choice, "set")
        for member in declared.choice.members:
            if member.text not in OPS and member.text not in COMBINES:
                self.unknown(member.text, member.span, [*OPS, *COMBINES], "op or combine")
        known = [m for m in members if m in OPS or m in COMBINES]
        if not (all(m in OPS for m in known) or all(m in COMBINES for m in known)):
            self.error(
                f"set `{name}` mixes ops and combines",
                declared.choice.span,
                hint="a set holds candidate ops or candidate combines; declare two sets",
            )
        self.sets[name] = tuple(known)

    def members(self, choice: st.Choice, what: str) -> tuple[str, ...]:
        names = [member.text for member in choice.members]
        if not names:
            self.error(f"the {what} lists no candidates", choice.span, hint="list one or more: `[a, b]`")
        for member in choice.members:
            if names.count(member.text) > 1:
                self.error(f"`{member.text}` is listed twice", member.span, hint="list each candidate once")
                break
        return tuple(names)

    # -- candidates -------------------------------------------------------------------------------

    def candidates(self, pick: st.Pick, vocabulary, what: str) -> tuple[str, ...]:
        """The names a pick stands for (an op, a combine, a list or a named set of them), each
        checked against what may stand there."""
        if isinstance(pick, st.Choice):
            names = self.members(pick, what)
            for member in pick.members:
                if member.text not in vocabulary:
                    self.unknown(member.text, member.span, vocabulary, what)
            return names
        if pick.text not in self.sets:
            if pick.text not in vocabulary:
                self.unknown(pick.text, pick.span, vocabulary, what)
            return (pick.text,)
        names = self.sets[pick.text]
        misfits = [name for name in names if name not in vocabulary]
        if misfits:
            self.error(
                f"set `{pick.text}` holds {', '.join(f'`{m}`' for m in misfits)}, not {what}s here",
                pick.span,
                hint=self.vocabulary_hint(misfits, vocabulary, what),
            )
        return names

    def unknown(self, name: str, span: Span | None, vocabulary, what: str) -> None:
        self.error(
            f"unknown {what} `{name}`"
            if name not in OPS and name not in COMBINES
            else f"`{name}` is not {'an' if what[0] in 'aeiou' else 'a'} {what} here",
            span,
            hint=lambda: self.vocabulary_hint([name], vocabulary, what),
        )

    def vocabulary_hint(self, names: list[str], vocabulary, what: str) -> str:
        if ZERO_OP in names and what == "op":
            return (
                f"`{ZERO_OP}` (a zero edge) is a candidate only in a node that keeps its strongest "
                "edges (`keep K`)"
            )
        return did_you_mean(names[0], vocabulary) or f"{what}s here: {', '.join(vocabulary)}"

    def op_vocabulary(self, keep: bool) -> tuple[str, ...]:
        """The ops an edge may name: the convention's, and `none` where edges are ranked (a keep
        node), since a derived cell never keeps a zero edge."""
        ops = tuple(self.convention.ops) if self.convention_known else tuple(OPS)
        return (*ops, ZERO_OP) if keep and ZERO_OP not in ops else ops

    # -- cells ------------------------------------------------------------------------------------

    def space_cell(self, cell: st.CellDeclaration) -> None:
        kind = cell.kind.text
        defined = self.declare_inputs(cell)
        nodes = [s for s in cell.statements if isinstance(s, st.BlockStatement)]
        outputs = [s for s in cell.statements if isinstance(s, st.OutputStatement)]
        later = {node.target.text: node.target.span for node in nodes}
        for node in nodes:
            self.node(node, defined, later)
        if not outputs:
            self.error(
                f"cell `{kind}` has no output",
                cell.close_span,
                hint="end the cell with `return concat(...)`, or `return concat(unused)` for NASNet's rule",
            )
            return
        for extra in outputs[1:]:
            self.error("a cell has one output", extra.span, hint="merge the states into one `return`")
        self.space_output(outputs[0], defined, later, nodes[-1].target.text if nodes else None)

    def node(self, node: st.BlockStatement, defined: dict[str, Span | None], later) -> None:
        self.identifier(node.target, "state name")
        if node.target.text == UNUSED:
            self.error(
                f"a state cannot be named `{UNUSED}`",
                node.target.span,
                hint=f"`return concat({UNUSED})` means the states no node reads",
            )
        keep = node.keep
        combines = self.candidates(node.combine, self.convention.combines, "combine")
        earlier = list(defined)
        for operand in node.operands:
            self.edge(operand, defined, later, keep is not None)
        self.define(node.target, defined)
        later.pop(node.target.text, None)
        edges = len(node.operands)
        if keep is not None and not 1 <= keep.count <= edges:
            self.error(
                f"`keep {keep.text}`: `{node.target.text}` has {edges} candidate edge(s)",
                keep.span,
                hint=f"a node keeps between 1 and its number of edges; give it at least {keep.text} edges"
                if keep.count >= 1
                else "keep a positive number of edges",
            )
            return
        if self.dense:
            self.dense_node(node, earlier)
            return
        kept = keep.count if keep is not None else edges
        arity = {COMBINES[c].arity for c in combines if c in COMBINES}
        if arity and kept not in arity:
            (need,) = sorted(arity)[:1]
            self.error(
                f"a derived `{node.target.text}` would have {kept} operand(s); "
                f"`{', '.join(combines)}` takes {need}",
                (keep or node).span,
                hint=f"{NODE_SHAPE}; with more edges than {need}, `keep {need}` keeps the strongest",
            )

    def dense_node(self, node: st.BlockStatement, earlier: list[str]) -> None:
        read = [
            op.args[0].text
            if isinstance(op, st.OpApplication) and len(op.args) == 1 and isinstance(op.args[0], st.Name)
            else None
            for op in node.operands
        ]
        if read != earlier or node.keep is not None:
            example = ", ".join(f"ops({state})" for state in earlier)
            self.error(
                f"`{node.target.text}` must read each earlier state once, in order, and keep them all",
                node.span,
                hint=f"{self.convention.name} nodes sum one op on every state before them: "
                f"`{node.target.text} = add({example})`",
            )

    def edge(self, operand: st.Operand, defined, later, keep: bool) -> None:
        if isinstance(operand, st.BareState):
            self.error(
                f"operand `{operand.name.text}` has no op",
                operand.span,
                hint=f"apply ops to it: `ops({operand.name.text})`",
            )
            return
        ops = self.candidates(operand.op, self.op_vocabulary(keep), "op")
        if keep and ops and set(ops) <= {ZERO_OP}:
            self.error(
                f"this edge's only candidate is `{ZERO_OP}`, which a derived cell never keeps",
                operand.op.span,
                hint="give the edge a candidate that computes something, or delete the edge",
            )
        if len(operand.args) != 1:
            self.error(
                f"an edge reads 1 input, got {len(operand.args)}",
                operand.span,
                hint="list candidate inputs as one argument: `ops([h0, h1])`",
            )
        for arg in operand.args:
            if isinstance(arg, st.Choice):
                self.members(arg, "inputs")
                if keep and len(arg.members) > 1:
                    self.error(
                        "an edge of a `keep` node reads one state",
                        arg.span,
                        hint="a keep node ranks its edges, so give each candidate input its own edge",
                    )
                for member in arg.members:
                    self.reference(member, defined, later)
            else:
                self.reference(arg, defined, later)

    def space_output(self, output: st.OutputStatement, defined, later, last: str | None) -> None:
        if output.combine.text != OUTPUT_COMBINE:
            self.error(
                f"a cell output is a `{OUTPUT_COMBINE}`, not `{output.combine.text}`",
                output.combine.span,
                hint="`return concat(h2, h3)`, or `return concat(unused)`",
            )
        members = [m.text for m in output.members]
        if not members:
            self.error("the cell output is empty", output.span, hint="`return concat(unused)` or name states")
        if self.dense and members != [last]:
            self.error(
                f"{self.convention.name} cells output their last node alone",
                output.span,
                hint=f"`return concat({last or 'h1'})`",
            )
        if members == [UNUSED]:
            return
        for member in output.members:
            if members.count(member.text) > 1:
                self.error(f"`{member.text}` appears twice in the output", member.span, hint="list it once")
                break
        for member in output.members:
            self.reference(member, defined, later)


def _pick_names(pick: st.Pick, sets: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], str | None]:
    if isinstance(pick, st.Choice):
        return tuple(m.text for m in pick.members), None
    if pick.text in sets:
        return sets[pick.text], pick.text
    return (pick.text,), None


def _build(module: st.Module, filename: str, source: str | None, convention: str) -> Space:
    comments, footer = _attach_comments(module)
    none = ir.NO_COMMENTS
    sets = {s.name.text: tuple(m.text for m in s.choice.members) for s in module.sets}
    choice_sets = tuple(
        ChoiceSet(s.name.text, sets[s.name.text], comments.get(("set", i), none), s.span)
        for i, s in enumerate(module.sets)
    )
    cells = []
    for c, cell in enumerate(module.cells):
        nodes, output = [], None
        for i, statement in enumerate(cell.statements):
            attached = comments.get(("statement", c, i), none)
            if isinstance(statement, st.OutputStatement):
                members = tuple(m.text for m in statement.members)
                output = ir.Output(members, statement.combine.text, attached, statement.span)
                continue
            edges = []
            for operand in statement.operands:
                ops, op_set = _pick_names(operand.op, sets)
                inputs, _ = _pick_names(operand.args[0], {})
                edges.append(Edge(ops, inputs, op_set, operand.span))
            combines, combine_set = _pick_names(statement.combine, sets)
            keep = statement.keep.count if statement.keep is not None else None
            nodes.append(
                Node(
                    statement.target.text,
                    combines,
                    tuple(edges),
                    keep,
                    combine_set,
                    attached,
                    statement.span,
                )
            )
        cells.append(
            SpaceCell(
                cell.kind.text,
                tuple(n.text for n in cell.inputs),
                tuple(nodes),
                output,
                comments.get(("cell", c), none),
                comments.get(("cell_close", c), none),
                cell.span,
            )
        )
    return Space(
        name=module.name.text,
        convention=convention,
        sets=choice_sets,
        cells=tuple(cells),
        metadata=_meta_entries(module, comments),
        comments=comments.get(("header",), none),
        meta_comments=comments.get(("meta",), none),
        meta_close_comments=comments.get(("meta_close",), none),
        footer=footer,
        filename=filename,
        source=source,
    )


def check_space(module: st.Module, filename: str = "<input>", source: str | None = None) -> Space:
    """Check a `space` file's syntax tree and build its IR; raise NascError with every diagnostic."""
    checker = _SpaceChecker(filename)
    checker.space(module)
    checker.diagnostics.raise_if_any(source)
    return _build(module, filename, source, checker.convention.name)
