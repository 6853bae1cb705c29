"""The DARTS genotype format, read safely: `Genotype(normal=[(op, index), ...], normal_concat=...,
reduce=[...], reduce_concat=...)`, as quark0/darts cnn/genotypes.py and its descendants (PC-DARTS,
P-DARTS, GDAS) print and ship it, alone or as a Python file of many.

Nothing in the text is evaluated, ever: it is parsed with `ast` and only literal shapes are accepted
(lists and tuples of strings and integers, `range(a, b)` with integer literals, names bound to other
genotypes in the same file). Anything else is a diagnostic at its line and column.

Reading: pairs (2i, 2i + 1) of a cell list make block i, `add`ing the two ops; state index 0 is the
cell's first input (s0, the cell two below), 1 the second (s1, the cell below), k >= 2 block k - 2.
DARTS's `skip_connect` is nasc's `identity`; `none` (the zero op of the search) has no place in a
final cell.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nasc.compiler import ir
from nasc.compiler.conventions.darts import OPS as DARTS_OPS
from nasc.diagnostics import Diagnostic, NascError, Span, did_you_mean, name_list

# DARTS's op names → nasc's, where they differ.
RENAMED = {"skip_connect": "identity"}
INPUTS = ("s0", "s1")
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
KINDS = {"normal": "normal", "reduce": "reduction"}
SHAPE = "Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])"


@dataclass(frozen=True)
class _Cell:
    ops: tuple[tuple[str, int, ast.AST], ...]
    concat: tuple[int, ...]
    concat_node: ast.AST


class _Reader:
    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename

    def fail(self, message: str, node: ast.AST | None, hint: str | None = None) -> NascError:
        span = None
        if node is not None and hasattr(node, "lineno"):
            end_line = getattr(node, "end_lineno", node.lineno) or node.lineno
            end_col = getattr(node, "end_col_offset", node.col_offset + 1) or node.col_offset + 1
            if end_line != node.lineno:
                end_line, end_col = node.lineno, node.col_offset + 2
            span = Span(node.lineno, node.col_offset + 1, end_line, end_col + 1)
        return NascError([Diagnostic(message, span, self.filename, hint)], self.text)

    def module(self) -> ast.Module:
        try:
            return ast.parse(self.text, self.filename)
        except SyntaxError as error:
            line, column = error.lineno or 1, error.offset or 1
            raise NascError(
                [
                    Diagnostic(
                        f"not a DARTS genotype file: {error.msg}",
                        Span(line, column, line, column + 1),
                        self.filename,
                        f"expected `{SHAPE}`",
                    )
                ],
                self.text,
            ) from None
        except (RecursionError, MemoryError, ValueError) as error:
            raise NascError(
                [Diagnostic(f"not a DARTS genotype file: {type(error).__name__}", None, self.filename)]
            ) from None

    def genotypes(self, tree: ast.Module) -> dict[str, ast.Call]:
        """Every `NAME = Genotype(...)` (and `NAME = OTHER` alias) of the file, or the one bare call."""
        found: dict[str, ast.Call] = {}
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
                if not isinstance(target, ast.Name):
                    continue
                if self.is_genotype(value):
                    found[target.id] = value
                elif isinstance(value, ast.Name) and value.id in found:
                    found[target.id] = found[value.id]
            elif isinstance(statement, ast.Expr) and self.is_genotype(statement.value):
                found.setdefault("", statement.value)
        return found

    @staticmethod
    def is_genotype(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == "Genotype"
        )

    def fields(self, call: ast.Call) -> dict[str, ast.AST]:
        values: dict[str, ast.AST] = {}
        if len(call.args) > len(FIELDS):
            raise self.fail(f"Genotype takes {len(FIELDS)} fields, got {len(call.args)}", call)
        for name, node in zip(FIELDS, call.args, strict=False):
            values[name] = node
        for keyword in call.keywords:
            if keyword.arg not in FIELDS:
                raise self.fail(
                    f"unknown Genotype field `{keyword.arg}`", keyword.value, f"fields: {', '.join(FIELDS)}"
                )
            values[keyword.arg] = keyword.value
        missing = [name for name in FIELDS if name not in values]
        if missing:
            raise self.fail(f"Genotype without `{missing[0]}`", call, f"fields: {', '.join(FIELDS)}")
        return values

    def integer(self, node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        raise self.fail("expected an integer", node)

    def concat(self, node: ast.AST) -> tuple[int, ...]:
        if isinstance(node, (ast.List, ast.Tuple)):
            return tuple(self.integer(element) for element in node.elts)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "range"
            and not node.keywords
            and 1 <= len(node.args) <= 2
        ):
            bounds = [self.integer(arg) for arg in node.args]
            start, stop = (0, bounds[0]) if len(bounds) == 1 else bounds
            if not 0 <= start <= stop <= 64:
                raise self.fail(f"range({start}, {stop}) is not a list of states of a cell", node)
            return tuple(range(start, stop))
        raise self.fail("expected a list of state indices or range(a, b)", node)

    def cell(self, ops_node: ast.AST, concat_node: ast.AST) -> _Cell:
        if not isinstance(ops_node, (ast.List, ast.Tuple)):
            raise self.fail("expected a list of (op, input) pairs", ops_node)
        ops = []
        for pair in ops_node.elts:
            if not (isinstance(pair, (ast.Tuple, ast.List)) and len(pair.elts) == 2):
                raise self.fail("expected an (op, input) pair", pair)
            name, index = pair.elts
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                raise self.fail("expected an op name in quotes", name)
            ops.append((name.value, self.integer(index), pair))
        if not ops or len(ops) % 2:
            raise self.fail(f"a cell list needs an even, non-zero number of ops, got {len(ops)}", ops_node)
        return _Cell(tuple(ops), self.concat(concat_node), concat_node)


def _op(reader: _Reader, name: str, node: ast.AST) -> str:
    op = RENAMED.get(name, name)
    if name == "none":
        raise reader.fail("the `none` op (zero) has no place in a final cell", node)
    if op not in DARTS_OPS:
        known = sorted({*DARTS_OPS, *RENAMED} - set(RENAMED.values()))
        raise reader.fail(
            f"`{name}` is not an op of the darts convention",
            node,
            did_you_mean(name, known) or f"ops: {', '.join(known)}",
        )
    return op


def _ir_cell(reader: _Reader, kind: str, cell: _Cell) -> ir.Cell:
    def state(index: int, available: int, node: ast.AST) -> str:
        if not 0 <= index < available:
            raise reader.fail(
                f"state {index} does not exist here: a {kind} block can read states 0 to {available - 1}",
                node,
            )
        return INPUTS[index] if index < 2 else f"h{index}"

    blocks = []
    for step in range(len(cell.ops) // 2):
        operands = []
        for name, index, node in cell.ops[2 * step : 2 * step + 2]:
            operands.append(ir.Operand(_op(reader, name, node), state(index, step + 2, node)))
        blocks.append(ir.Block(f"h{step + 2}", "add", tuple(operands)))
    members = []
    for index in cell.concat:
        name = state(index, len(blocks) + 2, cell.concat_node)
        if name in members:
            raise reader.fail(f"state {index} is listed twice in the concat", cell.concat_node)
        members.append(name)
    if not members:
        raise reader.fail("the concat is empty", cell.concat_node)
    return ir.Cell(kind, INPUTS, tuple(blocks), ir.Output(tuple(members)))


def read_darts(text: str, filename: str = "<input>", name: str | None = None) -> ir.Genotype:
    """The genotype `name` of a DARTS genotype text (the only one when `name` is None), as nasc IR
    under the darts convention. Raises NascError pointing into the text."""
    reader = _Reader(text, filename)
    found = reader.genotypes(reader.module())
    if not found:
        raise reader.fail(
            "no Genotype(...) in this file",
            None,
            f"expected `NAME = {SHAPE}`",
        )
    if name is None:
        distinct = {id(call) for call in found.values()}
        if len(distinct) > 1:
            raise reader.fail(
                f"the file holds {len(found):,} genotypes: {name_list(n for n in found if n)}",
                None,
                "choose one with --name",
            )
        name = next(iter(found))
    elif name not in found:
        raise reader.fail(
            f"no genotype `{name}` in this file",
            None,
            did_you_mean(name, [n for n in found if n]) or f"it holds: {name_list(n for n in found if n)}",
        )
    values = reader.fields(found[name])
    cells = tuple(
        _ir_cell(reader, KINDS[field], reader.cell(values[field], values[f"{field}_concat"]))
        for field in ("normal", "reduce")
    )
    genotype_name = (name or "imported").lower()
    if ir.identifier_problem(genotype_name):
        genotype_name = "imported"
    metadata = (ir.MetaEntry("imported_from", f"{filename} {name}".strip()),)
    return ir.Genotype(genotype_name, cells, metadata, convention="darts")


# nasc's op names → DARTS's, where they differ.
TO_DARTS = {nasc_name: darts_name for darts_name, nasc_name in RENAMED.items()}


def write_darts(genotype: ir.Genotype, name: str | None = None) -> str:
    """`NAME = Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])` for a
    genotype of the darts convention; FormatError naming what the format cannot say otherwise."""
    from nasc.compiler.nasnet_format import FormatError

    if genotype.convention != "darts":
        raise FormatError(
            f"the darts format describes cells of the darts convention; this genotype is read by "
            f"`{genotype.convention}`, whose ops mean other things"
        )
    fields = []
    for field, kind in (("normal", "normal"), ("reduce", "reduction")):
        cell = genotype.cell(kind)
        states = {name: index for index, name in enumerate(cell.inputs)}
        pairs = []
        for block in cell.blocks:
            for operand in block.operands:
                pairs.append(f"({TO_DARTS.get(operand.op, operand.op)!r}, {states[operand.input]})")
            states[block.target] = len(states)
        concat = ", ".join(str(states[member]) for member in cell.output.members)
        fields.append(f"{field}=[{', '.join(pairs)}], {field}_concat=[{concat}]")
    return f"{(name or genotype.name).upper()} = Genotype({', '.join(fields)})\n"
