"""Syntax tree to Genotype IR. Finds every mistake in a file, not just the first."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from nasc.compiler import ir
from nasc.compiler.conventions import CONVENTIONS, DEFAULT, NASNET, Convention
from nasc.compiler.registry import COMBINES, OPS, OUTPUT_COMBINE
from nasc.diagnostics import DiagnosticSink, Hint, Span, did_you_mean
from nasc.grammar import syntax as st

BLOCK_SHAPE = "a block reads `state = combine(op(input), op(input))`"


def _defined_before(defined: dict[str, Span | None], count: int) -> list[str]:
    """The first `count` names of `defined` (insertion-ordered): what was in scope at a use."""
    return list(itertools.islice(defined, count))


def _scope_hint(name: str, in_scope: list[str]) -> str:
    shown = ", ".join(in_scope[:8]) + (f" and {len(in_scope) - 8} more" if len(in_scope) > 8 else "")
    return did_you_mean(name, in_scope) or f"defined here: {shown or 'nothing'}"


@dataclass
class _Checker:
    filename: str
    convention: Convention = NASNET
    convention_known: bool = True  # False after an unknown convention: its rules are not checked
    diagnostics: DiagnosticSink = field(init=False)

    def __post_init__(self) -> None:
        self.diagnostics = DiagnosticSink(self.filename)

    def error(self, message: str, span: Span | None, hint: Hint = None) -> None:
        self.diagnostics.error(message, span, hint)

    def identifier(self, name: st.Name, what: str) -> None:
        problem = ir.identifier_problem(name.text)
        if problem:
            self.error(f"{what} {problem}", name.span, hint="choose another name, e.g. `h2` or `my_cell`")

    # -- genotype ---------------------------------------------------------------------------------

    def space_only(self, span: Span | None, what: str) -> None:
        self.error(
            f"{what} belongs to a search space; a cell has one choice everywhere",
            span,
            hint="start the file with `space NAME` to write a space, or name one candidate",
        )

    def module(self, module: st.Module) -> None:
        self.identifier(module.name, "genotype name")
        for declared in module.sets:
            self.space_only(declared.span, f"set `{declared.name.text}`")
        if module.convention is not None:
            self.resolve_convention(module.convention)
        if module.metadata is not None:
            self.metadata(module.metadata)
        self.cells(module, "genotype", self.cell)

    def cells(self, module: st.Module, what: str, check_cell) -> None:
        """Each cell once, of a kind the convention builds (`check_cell` checks its body), and every
        kind it needs present."""
        seen: dict[str, st.CellDeclaration] = {}
        for cell in module.cells:
            kind = cell.kind.text
            if kind in seen:
                first = seen[kind].kind.span
                self.error(
                    f"cell `{kind}` is given twice",
                    cell.kind.span,
                    hint=f"the first `{kind}` cell is on line {first.line}; keep one" if first else None,
                )
                continue
            seen[kind] = cell
            if self.convention_known and kind not in self.convention.cell_kinds:
                self.error(
                    f"unknown cell kind `{kind}`",
                    cell.kind.span,
                    hint=did_you_mean(kind, self.convention.cell_kinds)
                    or f"the {self.convention.name} convention builds networks from "
                    f"{self.convention.describe_kinds()} cells",
                )
            check_cell(cell)
        for kind in self.convention.cell_kinds if self.convention_known else ():
            if kind not in seen:
                example = ", ".join(self.convention.example_inputs)
                self.error(
                    f"{what} `{module.name.text}` has no `{kind}` cell",
                    module.name.span,
                    hint=f"the {self.convention.name} convention needs {self.convention.describe_kinds()} "
                    f"cells, e.g. `{kind}({example}) {{ ... }}`",
                )

    def declare_inputs(self, cell: st.CellDeclaration) -> dict[str, Span | None]:
        """The cell's inputs, checked against the convention's count: the scope its body starts with."""
        kind = cell.kind.text
        self.identifier(cell.kind, "cell kind")
        if self.convention_known and len(cell.inputs) != self.convention.cell_inputs:
            example = ", ".join(self.convention.example_inputs)
            self.error(
                f"cell `{kind}` declares {len(cell.inputs)} input(s); {self.convention.name} cells take "
                f"{self.convention.cell_inputs}",
                cell.kind.span,
                hint=f"declare `{kind}({example})`: {self.convention.describe_inputs()}",
            )
        defined: dict[str, Span | None] = {}
        for name in cell.inputs:
            self.identifier(name, "input name")
            self.define(name, defined)
        return defined

    def resolve_convention(self, name: st.Name) -> None:
        found = CONVENTIONS.get(name.text)
        if found is None:
            self.convention_known = False
            self.error(
                f"unknown convention `{name.text}`",
                name.span,
                hint=lambda: (
                    did_you_mean(name.text, CONVENTIONS)
                    or f"conventions: {', '.join(CONVENTIONS)} (without one, a file is read by `{DEFAULT}`)"
                ),
            )
        else:
            self.convention = found

    def metadata(self, metadata: st.Metadata) -> None:
        keys: dict[str, st.MetaEntry] = {}
        for entry in metadata.entries:
            self.identifier(entry.key, "metadata key")
            if entry.key.text in keys:
                first = keys[entry.key.text].key.span
                self.error(
                    f"metadata key `{entry.key.text}` is given twice",
                    entry.key.span,
                    hint=f"the first is on line {first.line}; keep one" if first else None,
                )
            keys.setdefault(entry.key.text, entry)
            if entry.value_kind == "bare":
                self.error(
                    f"metadata value `{entry.value}` is not a string or a number",
                    entry.value_span,
                    hint=f'put text in double quotes: `{entry.key.text} = "{entry.value}"`',
                )
            elif entry.value_kind == "too_large":
                self.error(
                    "integer too large",
                    entry.value_span,
                    hint="metadata integers are limited to 4,300 digits; write longer values as strings",
                )
            elif isinstance(entry.value, float) and not math.isfinite(entry.value):
                self.error(
                    "metadata number is too large",
                    entry.value_span,
                    hint="numbers must be finite; write very large values as strings",
                )

    # -- cells ------------------------------------------------------------------------------------

    def cell(self, cell: st.CellDeclaration) -> None:
        kind = cell.kind.text
        defined = self.declare_inputs(cell)
        blocks = [s for s in cell.statements if isinstance(s, st.BlockStatement)]
        outputs = [s for s in cell.statements if isinstance(s, st.OutputStatement)]
        if not cell.statements:
            self.error(
                f"cell `{kind}` is empty",
                cell.kind.span,
                hint=f"{BLOCK_SHAPE}; end the cell with `return concat(...)`",
            )
            return
        expected = self.convention.blocks_per_cell if self.convention_known else None
        if expected is not None and len(blocks) != expected:
            self.error(
                f"cell `{kind}` has {len(blocks)} block(s); {self.convention.name} cells have {expected}",
                cell.kind.span,
                hint=f"{self.convention.title}'s cell is its input and {expected} nodes",
            )
        errors_before = len(self.diagnostics)
        later_targets = {b.target.text: b.target.span for b in blocks}
        for statement in cell.statements:
            if isinstance(statement, st.BlockStatement):
                self.block(statement, defined, later_targets)
        if not outputs:
            self.error(
                f"cell `{kind}` has no output",
                cell.close_span,
                hint="end the cell with `return concat(...)` naming the states it outputs",
            )
            return
        for extra in outputs[1:]:
            self.error(
                "a cell has one output", extra.span, hint="merge the states into one `return concat(...)`"
            )
        output = outputs[0]
        after = [
            s
            for s in cell.statements[cell.statements.index(output) + 1 :]
            if isinstance(s, st.BlockStatement)
        ]
        for block in after:
            self.error(
                f"block `{block.target.text}` comes after the cell's output",
                block.span,
                hint="`return` ends the cell; move the block above it",
            )
        self.output(output, defined, later_targets, blocks[-1].target.text if blocks else None)
        if len(self.diagnostics) == errors_before:  # on a broken cell, reachability would only add noise
            self.dead_blocks(blocks, output)

    def define(self, name: st.Name, defined: dict[str, Span | None]) -> None:
        if name.text in defined:
            first = defined[name.text]
            self.error(
                f"`{name.text}` is defined twice",
                name.span,
                hint=f"it is first defined on line {first.line}; give this state a new name"
                if first
                else "give this state a new name",
            )
        else:
            defined[name.text] = name.span

    def reference(
        self, name: st.Name, defined: dict[str, Span | None], later: dict[str, Span | None]
    ) -> bool:
        if name.text in defined:
            return True
        if name.text in later:
            line = later[name.text].line if later[name.text] else "a later line"
            self.error(
                f"`{name.text}` is used before it is defined",
                name.span,
                hint=f"`{name.text}` is defined on line {line}; a block may use only the cell's inputs "
                "and the blocks above it",
            )
        else:
            count = len(defined)
            self.error(
                f"`{name.text}` is not defined",
                name.span,
                hint=lambda: _scope_hint(name.text, _defined_before(defined, count)),
            )
        return False

    def block(
        self, block: st.BlockStatement, defined: dict[str, Span | None], later: dict[str, Span | None]
    ) -> None:
        self.identifier(block.target, "state name")
        if block.keep is not None:
            self.space_only(block.keep.span, "`keep`")
        if isinstance(block.combine, st.Choice):
            self.space_only(block.combine.span, "a list of candidate combines")
            for operand in block.operands:
                self.operand(operand, defined, later)
            self.define(block.target, defined)
            return
        combine = block.combine.text
        spec = COMBINES.get(combine)
        if spec is None:
            hint = (
                f"`{combine}` is an op; apply it inside a combine: `add({combine}(h0), identity(h1))`"
                if combine in OPS
                else lambda: did_you_mean(combine, COMBINES) or f"combines: {', '.join(COMBINES)}"
            )
            self.error(f"unknown combine `{combine}`", block.combine.span, hint=hint)
        elif self.dense and combine in self.convention.combines:
            self.dense_block(block, list(defined))
        elif not self.dense and len(block.operands) != spec.arity:
            self.error(
                f"`{combine}` takes {spec.arity} operands, got {len(block.operands)}",
                block.span,
                hint=BLOCK_SHAPE,
            )
        elif self.convention_known and combine not in self.convention.combines:
            self.error(
                f"`{combine}` is not a combine of the {self.convention.name} convention",
                block.combine.span,
                hint=f"{self.convention.name} cells combine with {', '.join(self.convention.combines)}",
            )
        for operand in block.operands:
            self.operand(operand, defined, later)
        self.define(block.target, defined)
        later.pop(block.target.text, None)

    @property
    def dense(self) -> bool:
        return self.convention_known and self.convention.dense_nodes

    def dense_block(self, block: st.BlockStatement, earlier: list[str]) -> None:
        """A node of a dense convention (nb201): one op on each earlier state, in order."""
        read = [
            operand.args[0].text
            if isinstance(operand, st.OpApplication)
            and len(operand.args) == 1
            and isinstance(operand.args[0], st.Name)
            else None
            for operand in block.operands
        ]
        if read == earlier:
            return
        example = ", ".join(f"conv_3x3({state})" for state in earlier)
        self.error(
            f"`{block.target.text}` must read each earlier state once, in order: {', '.join(earlier)}",
            block.span,
            hint=f"{self.convention.name} nodes sum one op on every state before them, e.g. "
            f"`{block.target.text} = add({example})`; `none(state)` leaves one out",
        )

    def operand(
        self, operand: st.Operand, defined: dict[str, Span | None], later: dict[str, Span | None]
    ) -> None:
        if isinstance(operand, st.BareState):
            self.error(
                f"operand `{operand.name.text}` has no op",
                operand.span,
                hint=f"apply an op to it; `identity({operand.name.text})` passes it through unchanged",
            )
            return
        choices = [pick for pick in (operand.op, *operand.args) if isinstance(pick, st.Choice)]
        for choice in choices:
            self.space_only(choice.span, "a list of candidates")
        if choices:
            return
        op = operand.op.text
        if op not in OPS:
            hint = (
                f"`{op}` is a combine; operands are ops applied to one state, e.g. `sep_conv_3x3(h0)`"
                if op in COMBINES
                else lambda: did_you_mean(op, OPS) or f"ops: {', '.join(OPS)}"
            )
            self.error(f"unknown op `{op}`", operand.op.span, hint=hint)
        elif self.convention_known and op not in self.convention.ops:
            known = self.convention.ops
            self.error(
                f"`{op}` is not an op of the {self.convention.name} convention",
                operand.op.span,
                hint=lambda: did_you_mean(op, known) or f"{self.convention.name} ops: {', '.join(known)}",
            )
        if len(operand.args) != 1:
            self.error(
                f"`{op}` takes 1 input, got {len(operand.args)}",
                operand.span,
                hint="an op applies to exactly one state, e.g. `sep_conv_3x3(h0)`",
            )
        for arg in operand.args:
            self.reference(arg, defined, later)

    def output(
        self,
        output: st.OutputStatement,
        defined: dict[str, Span | None],
        later: dict[str, Span | None],
        last: str | None,
    ) -> None:
        if output.combine.text != OUTPUT_COMBINE:
            self.error(
                f"a cell output is a `{OUTPUT_COMBINE}`, not `{output.combine.text}`",
                output.combine.span,
                hint="a cell outputs the channel concatenation of states: `return concat(h2, h3)`",
            )
        if not output.members:
            self.error(
                "the cell output is empty", output.span, hint="name at least one state: `return concat(h2)`"
            )
        if self.dense and [member.text for member in output.members] != [last]:
            self.error(
                f"{self.convention.name} cells output their last node alone",
                output.span,
                hint=f"`return concat({last or 'h1'})`: a concatenation of one state is the state",
            )
        seen: set[str] = set()
        for member in output.members:
            if member.text in seen:
                self.error(
                    f"`{member.text}` appears twice in the output", member.span, hint="list each state once"
                )
            seen.add(member.text)
            self.reference(member, defined, later)

    def dead_blocks(self, blocks: list[st.BlockStatement], output: st.OutputStatement) -> None:
        producers = {b.target.text: b for b in blocks}
        reached: set[str] = set()
        pending = [m.text for m in output.members]
        while pending:
            name = pending.pop()
            if name in reached:
                continue
            reached.add(name)
            block = producers.get(name)
            if block is not None:
                pending.extend(arg.text for operand in block.operands for arg in operand.args)
        for block in blocks:
            if block.target.text not in reached:
                self.error(
                    f"block `{block.target.text}` never reaches the cell output",
                    block.target.span,
                    hint=f"add `{block.target.text}` to `return concat(...)`, or delete the block",
                )


# -- comments -------------------------------------------------------------------------------------


@dataclass
class _Slot:
    """A line-level item that comments attach to."""

    key: tuple
    start_line: int
    end_line: int
    leading: list[str] = field(default_factory=list)
    trailing: str | None = None

    def comments(self) -> ir.Comments:
        return ir.Comments(tuple(self.leading), self.trailing)


def _slots(module: st.Module) -> list[_Slot]:
    def slot(key: tuple, span: Span | None) -> _Slot:
        return _Slot(key, span.line, span.end_line)

    slots = [slot(("header",), module.header_span)]
    if module.metadata is not None:
        meta = module.metadata
        slots.append(_Slot(("meta",), meta.span.line, meta.open_span.line))
        slots += [slot(("entry", i), e.span) for i, e in enumerate(meta.entries)]
        slots.append(slot(("meta_close",), meta.close_span))
    slots += [slot(("set", i), declared.span) for i, declared in enumerate(module.sets)]
    for c, cell in enumerate(module.cells):
        slots.append(slot(("cell", c), cell.header_span))
        slots += [slot(("statement", c, i), s.span) for i, s in enumerate(cell.statements)]
        slots.append(slot(("cell_close", c), cell.close_span))
    return slots


def _attach_comments(module: st.Module) -> tuple[dict[tuple, ir.Comments], tuple[str, ...]]:
    if not module.comments:  # machine-written files (a search's) have none
        return {}, ()
    slots = _slots(module)
    footer: list[str] = []
    index = 0
    for comment in module.comments:
        line = comment.span.line
        while index < len(slots) and slots[index].end_line < line:
            index += 1
        if index == len(slots):
            footer.append(comment.text)
            continue
        slot = slots[index]
        if slot.end_line == line and slot.start_line <= line and slot.trailing is None:
            slot.trailing = comment.text
        else:
            slot.leading.append(comment.text)
    return {slot.key: slot.comments() for slot in slots}, tuple(footer)


# -- building the IR ------------------------------------------------------------------------------


def _meta_entries(module: st.Module, comments: dict[tuple, ir.Comments]) -> tuple[ir.MetaEntry, ...]:
    if module.metadata is None:
        return ()
    return tuple(
        ir.MetaEntry(e.key.text, e.value, comments.get(("entry", i), ir.NO_COMMENTS), e.span)
        for i, e in enumerate(module.metadata.entries)
    )


def _build(module: st.Module, filename: str, source: str | None, convention: str) -> ir.Genotype:
    comments, footer = _attach_comments(module)
    none = ir.NO_COMMENTS
    metadata = _meta_entries(module, comments)
    cells = []
    for c, cell in enumerate(module.cells):
        blocks, output = [], None
        for i, statement in enumerate(cell.statements):
            attached = comments.get(("statement", c, i), none) if comments else none
            if isinstance(statement, st.BlockStatement):
                operands = tuple([ir.Operand(o.op.text, o.args[0].text, o.span) for o in statement.operands])
                blocks.append(
                    ir.Block(
                        statement.target.text, statement.combine.text, operands, attached, statement.span
                    )
                )
            else:
                output = ir.Output(
                    tuple(m.text for m in statement.members), statement.combine.text, attached, statement.span
                )
        cells.append(
            ir.Cell(
                cell.kind.text,
                tuple(n.text for n in cell.inputs),
                tuple(blocks),
                output,
                comments.get(("cell", c), none),
                comments.get(("cell_close", c), none),
                cell.span,
            )
        )
    return ir.Genotype(
        name=module.name.text,
        cells=tuple(cells),
        metadata=metadata,
        comments=comments.get(("header",), none),
        meta_comments=comments.get(("meta",), none),
        meta_close_comments=comments.get(("meta_close",), none),
        footer=footer,
        convention=convention,
        filename=filename,
        source=source,
    )


def check(module: st.Module, filename: str = "<input>", source: str | None = None) -> ir.Genotype:
    """Check a syntax tree and build its IR; raise NascError with every diagnostic found."""
    checker = _Checker(filename)
    if module.kind != "genotype":
        checker.error(
            f"`{module.name.text}` is a search space, not a cell",
            module.header_span,
            hint="commands that take a cell need a `genotype` file; `nasc check`, `fmt`, `hash` and "
            "`compile` read spaces too",
        )
        checker.diagnostics.raise_if_any(source)
    checker.module(module)
    checker.diagnostics.raise_if_any(source)
    return _build(module, filename, source, checker.convention.name)
