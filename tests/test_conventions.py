"""Network conventions: the convention is part of the source and of the architecture, each convention
checks its own rules, and the DARTS cells compile to the reference networks exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.compiler.darts_format import read_darts
from nasc.compiler.diff import diff
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network
from nasc.runtime.stats import count_parameters, measure

from .conftest import GENOTYPES
from .darts_reference import REFERENCE_GENOTYPES

DARTS_V2 = GENOTYPES / "darts_v2.cell"
DARTS_V1 = GENOTYPES / "darts_v1.cell"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def darts_text(
    normal: str, reduction: str = "h2 = add(max_pool_3x3(s0), max_pool_3x3(s1))\nreturn concat(h2)"
) -> str:
    return f"genotype t : darts\nnormal(s0, s1) {{\n{normal}\n}}\nreduction(s0, s1) {{\n{reduction}\n}}\n"


# -- the convention in the source ----------------------------------------------------------------------


def test_the_header_names_the_convention_and_the_printer_keeps_it() -> None:
    genotype = nasc.load(DARTS_V2)
    assert genotype.convention == "darts"
    assert nasc.format(genotype) == DARTS_V2.read_text()
    assert nasc.parse(nasc.format(genotype)) == genotype
    nasnet = nasc.load(GENOTYPES / "nasnet_a.cell")
    assert nasnet.convention == "nasnet" and "genotype nasnet_a\n" in nasc.format(nasnet)
    # naming the default changes nothing: not the IR, not the hash; fmt leaves it unsaid
    explicit = nasc.parse(
        (GENOTYPES / "nasnet_a.cell").read_text().replace("genotype nasnet_a", "genotype nasnet_a : nasnet")
    )
    assert explicit == nasnet and nasc.structural_hash(explicit) == nasc.structural_hash(nasnet)


def test_an_unknown_convention_is_a_diagnostic_with_a_suggestion() -> None:
    with pytest.raises(nasc.NascError) as caught:
        nasc.parse(
            darts_text("h2 = add(identity(s0), identity(s1))\nreturn concat(h2)").replace(
                ": darts", ": dartz"
            ),
            "t.cell",
        )
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.message, diagnostic.span.line, diagnostic.span.column) == (
        "unknown convention `dartz`",
        1,
        14,
    )
    assert diagnostic.hint == "did you mean `darts`?"


def test_each_convention_checks_its_own_ops_combines_and_inputs() -> None:
    with pytest.raises(nasc.NascError) as caught:
        nasc.parse(darts_text("h2 = concat(conv_1x7_7x1(s0), sep_conv_3x3(s1, s0))\nreturn concat(h2)"))
    messages = [d.message for d in caught.value.diagnostics]
    assert "`concat` is not a combine of the darts convention" in messages
    assert "`conv_1x7_7x1` is not an op of the darts convention" in messages
    with pytest.raises(nasc.NascError) as caught:
        nasc.parse("genotype t : darts\nnormal(a) { h = add(identity(a), identity(a)) return concat(h) }\n")
    (inputs,) = [d for d in caught.value.diagnostics if "input(s)" in d.message]
    assert inputs.message == "cell `normal` declares 1 input(s); darts cells take 2"
    assert "s0 from the cell two below" in inputs.hint
    # the same op name is fine where the convention knows it
    nasc.parse(darts_text("h2 = add(dil_conv_5x5(s0), sep_conv_7x7(s1))\nreturn concat(h2)"))


def test_the_convention_is_part_of_the_architecture() -> None:
    darts = nasc.load(DARTS_V2)
    as_nasnet = nasc.parse(DARTS_V2.read_text().replace(" : darts", ""))
    assert nasc.structural_hash(darts) != nasc.structural_hash(as_nasnet)
    changes = diff(as_nasnet, darts)
    assert [c.text for c in changes] == ["convention nasnet → darts"]
    code, out, _ = run("diff", str(DARTS_V2), str(DARTS_V1))
    assert code == 1 and "convention" not in out


def test_show_and_the_emitted_module_name_the_convention(tmp_path: Path) -> None:
    code, out, _ = run("show", str(DARTS_V2))
    assert code == 0 and "convention darts" in out.splitlines()[0] and "3,349,342 parameters" in out
    code, _, _ = run("compile", str(DARTS_V2), "-o", str(tmp_path / "d.py"))
    source = (tmp_path / "d.py").read_text()
    assert code == 0 and "(convention `darts`)" in source and 'CONVENTION = "darts"' in source


@pytest.mark.parametrize("path", sorted(GENOTYPES.glob("*.cell")), ids=lambda path: path.stem)
def test_show_counts_every_convention_at_its_default_preset(path: Path) -> None:
    import json

    from nasc.compiler.conventions import convention_of

    code, out, err = run("show", str(path))
    default = next(iter(convention_of(nasc.load(path)).presets))
    stats = json.loads(run("stats", str(path), "--json")[1])
    assert code == 0, err
    assert f"{default} preset: {stats['parameters']:,} parameters" in out


def test_where_conventions_disagree_on_an_op_stats_and_viz_say_so() -> None:
    import json

    code, out, _ = run("stats", str(DARTS_V2), "--json")
    darts = json.loads(out)
    assert code == 0 and darts["convention"] == "darts"
    assert "separable dilated" in darts["ops"]["dil_conv_3x3"]
    nasnet_text = DARTS_V2.read_text().replace(" : darts", "").replace("(s0, s1)", "(h1, h0)")
    nasnet_text = nasnet_text.replace("(s0)", "(h1)").replace("(s1)", "(h0)")
    nasnet = nasc.parse(nasnet_text)
    from nasc.compiler.conventions import convention_of
    from nasc.compiler.viz import to_dot

    assert convention_of(nasnet).ops["dil_conv_3x3"] == "3x3 dilated convolution (dilation 2)"
    dot = to_dot(nasc.load(DARTS_V2), "normal", lowered=True)
    assert "darts_v2 · darts (lowered)" in dot and "separable dilated" in dot
    # AmoebaNet lowers as NASNet does (squeeze, adjusted x2) and says its convs are bottlenecked.
    amoeba = nasc.load(AMOEBANET_A)
    dot = to_dot(amoeba, "all", lowered=True)
    assert "squeeze: ReLU, 1x1 conv to F, BN" in dot
    meaning = convention_of(amoeba).ops["conv_1x7_7x1"]
    assert "1x1" in meaning and " ".join(meaning.split()) in " ".join(dot.replace("\\n", " ").split())
    # PNASNet's one cell is drawn in both its roles, the reduction at stride 2.
    dot = to_dot(nasc.load(PNASNET_5), "all", lowered=True)
    assert "as the normal cell (stride 1)" in dot and "as the reduction cell (stride 2)" in dot


def test_a_darts_network_exports_to_onnx_with_its_convention(tmp_path: Path) -> None:
    out = tmp_path / "d.onnx"
    code, _, err = run("export", str(DARTS_V2), "--onnx", "--scale", "1@64", "-o", str(out))
    assert code == 0, err
    code, shown_out, _ = run("show", str(out))
    assert code == 0 and "convention: darts" in shown_out


# -- DARTS: the reference networks, exactly --------------------------------------------------------------

# Measured on the reference code (quark0/darts cnn/model.py NetworkCIFAR C=36, 20 layers and
# NetworkImageNet C=48, 14 layers): parameters without and with the auxiliary head.
DARTS_FIGURES = {
    ("darts_v2", "cifar"): (3_349_342, 3_825_768),
    ("darts_v2", "imagenet"): (4_718_752, 5_979_528),
    ("darts_v1", "cifar"): (3_169_414, 3_645_840),
    ("darts_v1", "imagenet"): (4_510_432, 5_771_208),
}


@pytest.mark.parametrize(("genotype_name", "preset"), sorted(DARTS_FIGURES))
def test_darts_cells_compile_to_the_reference_parameter_counts(genotype_name: str, preset: str) -> None:
    genotype = nasc.load(GENOTYPES / f"{genotype_name}.cell")
    plain, with_aux = DARTS_FIGURES[(genotype_name, preset)]
    model = build_network(genotype, EmitOptions(preset=preset)).model
    aux_model = build_network(genotype, EmitOptions(preset=preset), aux_head=True).model
    assert count_parameters(model) == plain and count_parameters(aux_model) == with_aux


def test_darts_stage_shapes_and_the_aux_head_in_training() -> None:
    genotype = nasc.load(DARTS_V2)
    model = build_network(genotype, EmitOptions(preset="cifar"), aux_head=True).model
    figures = measure(model, 32)
    shapes = [cell.output_shape[1:] for cell in figures.cells]
    # 20 cells; reductions at 6 and 13 double C (36 → 72 → 144); the cell output is 4·C
    assert shapes[5] == (144, 32, 32) and shapes[6] == (288, 16, 16) and shapes[13] == (576, 8, 8)
    assert shapes[-1] == (576, 8, 8) and model.num_features == 576
    assert [info["num_chs"] for info in model.feature_info] == [108, 144, 288, 576]
    model.train()
    logits, aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)


def test_darts_drop_path_grows_in_time_alike_in_every_cell() -> None:
    genotype = nasc.load(DARTS_V2)
    model = build_network(genotype, EmitOptions(preset="cifar")).model
    model.set_drop_path_progress(0.5)
    assert model.drop_path_keep_probs() == pytest.approx([1 - 0.5 * 0.2] * 20)


def test_darts_trains_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = run(
        "train", str(DARTS_V2), "--dataset", "digits", "--scale", "1@64", "--epochs", "1", "--out", str(out)
    )
    assert code == 0, stderr
    assert "trained darts_v2 for 1 epochs" in stdout and (out / "checkpoint.pt").exists()


# -- nasc import darts ---------------------------------------------------------------------------------------


def test_importing_the_reference_genotypes_gives_the_shipped_cells(tmp_path: Path) -> None:
    source = tmp_path / "genotypes.py"
    source.write_text(REFERENCE_GENOTYPES)
    for name, shipped in (("DARTS_V2", DARTS_V2), ("DARTS_V1", DARTS_V1), ("DARTS", DARTS_V2)):
        out = tmp_path / f"{name}.cell"
        code, _, err = run("import", "darts", str(source), "--name", name, "-o", str(out))
        assert code == 0, err
        assert nasc.structural_hash(nasc.load(out)) == nasc.structural_hash(nasc.load(shipped))
    code, _, err = run("import", "darts", str(source))
    assert code == 1 and "holds 3 genotypes: DARTS_V1, DARTS_V2, DARTS" in err


def test_range_concats_as_pc_darts_writes_them() -> None:
    text = (
        "PC_DARTS = Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), "
        "('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), "
        "('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), "
        "('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
    )
    genotype = read_darts(text, "pc.py")
    assert genotype.name == "pc_darts" and genotype.cell("normal").output.members == ("h2", "h3", "h4", "h5")
    assert nasc.parse(nasc.format(genotype)) == genotype


def _genotype(normal: str, concat: str = "[2]") -> str:
    return f"G = Genotype(normal={normal}, normal_concat={concat}, reduce=[], reduce_concat=[2])"


PAIR = "('sep_conv_3x3', 0)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_genotype("__import__('os').system('touch pwned')"), "expected a list of (op, input) pairs"),
        ("import os\nos.system('touch pwned')\n", "no Genotype(...) in this file"),
        (_genotype(f"[{PAIR}]"), "even, non-zero number of ops"),
        (_genotype(f"[{PAIR}, ('none', 1)]"), "`none` op (zero)"),
        (_genotype(f"[{PAIR}, ('sep_conv_3x3', 7)]"), "state 7 does not exist here"),
        (_genotype(f"[('sep_conv_3x4', 0), {PAIR}]"), "did you mean `sep_conv_3x3`?"),
        (_genotype(f"[{PAIR}, {PAIR}]", "range(2, 10**100)"), "expected an integer"),
        ("G = Genotype(normal=[], normal_concat=[2])", "Genotype without `reduce`"),
        ("G = Genotype(normal=[(" * 200 + ")]" * 200, "not a DARTS genotype file"),
    ],
    ids=[
        "a call as a value",
        "code, no genotype",
        "odd ops",
        "none",
        "bad index",
        "unknown op",
        "huge range",
        "missing field",
        "deep nesting",
    ],
)
def test_hostile_or_broken_darts_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "g.py"
    source.write_text(text)
    code, _, err = run("import", "darts", str(source), "-o", str(tmp_path / "out.cell"))
    assert code == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out.cell").exists() and not Path("pwned").exists()


# -- PNASNet-5: one cell in both roles, exact against timm ----------------------------------------------

PNASNET_5 = GENOTYPES / "pnasnet_5.cell"


def test_pnasnet_5_large_is_timms_pnasnet5large_to_the_parameter_and_the_cell() -> None:
    timm = pytest.importorskip("timm")
    genotype = nasc.load(PNASNET_5)
    built = build_network(genotype, EmitOptions(preset="large"))
    model, size = built.model, built.image_size
    figures = measure(model, size)
    # the figures of the issue: timm pnasnet5large's parameters, conv + linear mult-adds at 331 px
    assert (figures.parameters, figures.mult_adds) == (86_057_668, 24_937_395_792)
    peer = timm.create_model("pnasnet5large", pretrained=False)
    names = ["cell_stem_0", "cell_stem_1"] + [f"cell_{i}" for i in range(12)]
    assert [c.parameters for c in figures.cells] == [count_parameters(getattr(peer, n)) for n in names]
    assert count_parameters(peer) == figures.parameters
    shapes = [c.output_shape[1:] for c in figures.cells]
    assert shapes[0] == (270, 83, 83) and shapes[1] == (540, 42, 42) and shapes[-1] == (4320, 11, 11)
    # reductions are the 5th and 9th of the 12 cells (stem cells aside), the same cell at stride 2
    assert [c.kind for c in model.cells][2:] == ["normal"] * 4 + ["reduction"] + ["normal"] * 3 + [
        "reduction"
    ] + ["normal"] * 3
    assert list(model.cell_names) == names  # timm's (and TF-slim's) module names


def test_pnasnet_5_mobile_has_the_papers_size() -> None:
    code, out, err = run("stats", str(PNASNET_5), "--preset", "mobile", "--json")
    assert code == 0, err
    import json

    figures = json.loads(out)
    # the paper (Table 3): 5.1M parameters, 588M mult-adds; the reference code's exact counts
    assert (figures["parameters"], figures["mult_adds"]) == (5_064_487, 587_293_200)


def test_every_zoo_file_compiles_by_default(tmp_path: Path) -> None:
    for cell in sorted(GENOTYPES.glob("*.cell")):
        out = tmp_path / f"{cell.stem}.py"
        code, _, err = run("compile", str(cell), "-o", str(out))
        assert code == 0, (cell, err)
        assert f'CONVENTION = "{nasc.load(cell).convention}"' in out.read_text()


def test_pnasnet_trains_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = run(
        "train", str(PNASNET_5), "--scale", "1@160", "--epochs", "1", "--out", str(out)
    )
    assert code == 0, stderr
    assert "trained pnasnet_5 for 1 epochs" in stdout


# -- AmoebaNet-A: NASNet's cells with bottlenecked convolutions --------------------------------------------

AMOEBANET_A = GENOTYPES / "amoebanet_a.cell"


@pytest.mark.parametrize(
    ("preset", "figures"),
    [
        # Real et al. 2019, Table 2: 86.7M parameters, 23.1B mult-adds; 5.1M and 555M (mobile)
        ("large", (86_718_797, 87_668_685, 23_133_663_507)),
        ("mobile", (5_086_930, 5_666_558, 554_687_204)),
    ],
)
def test_amoebanet_a_has_the_papers_size_as_the_reference_code_builds_it(preset: str, figures) -> None:
    import json

    code, out, err = run("stats", str(AMOEBANET_A), "--preset", preset, "--json")
    assert code == 0, err
    counted = json.loads(out)
    assert (counted["parameters"], counted["parameters_with_aux"], counted["mult_adds"]) == figures
    assert "bottleneck" in counted["ops"]["conv_1x7_7x1"]


@pytest.mark.parametrize(
    ("cell", "options"),
    [
        (AMOEBANET_A, EmitOptions(preset="mobile")),
        (PNASNET_5, EmitOptions(preset="mobile")),
        (DARTS_V2, EmitOptions(preset="cifar", cells_per_stage=2, penultimate_filters=256)),
        (DARTS_V1, EmitOptions(preset="imagenet", cells_per_stage=1, penultimate_filters=384)),
    ],
    ids=["amoebanet-mobile", "pnasnet-mobile", "darts-cifar", "darts-imagenet"],
)
def test_static_counts_equal_the_built_module_for_every_convention(cell: Path, options: EmitOptions) -> None:
    from nasc.compiler.compilation import compile_genotype

    genotype = nasc.load(cell)
    built = build_network(genotype, options)
    model, size = built.model, built.image_size
    aux_model = build_network(genotype, options, aux_head=True).model
    measured = measure(model, size, aux_model)
    counted = compile_genotype(genotype, options).count()
    assert (counted.parameters, counted.parameters_with_aux, counted.mult_adds) == (
        measured.parameters,
        measured.parameters_with_aux,
        measured.mult_adds,
    )
    assert [(c.output_shape, c.parameters, c.mult_adds) for c in counted.cells] == [
        (c.output_shape, c.parameters, c.mult_adds) for c in measured.cells
    ]


def test_amoebanet_drop_path_grows_in_time_alike_in_every_cell() -> None:
    model = build_network(nasc.load(AMOEBANET_A), EmitOptions(preset="mobile")).model
    model.set_drop_path_progress(0.5)
    assert set(model.drop_path_keep_probs()) == {1 - 0.5 * (1 - 0.7)}


# -- export --format darts|nasnet, import nasnet -------------------------------------------------------------


@pytest.mark.parametrize("name", ["nasnet_a", "pnasnet_5", "amoebanet_a"])
def test_the_nasnet_family_round_trips_through_the_reference_cell_format(tmp_path: Path, name: str) -> None:
    import json

    exported, imported = tmp_path / f"{name}.json", tmp_path / f"{name}.cell"
    assert run("export", str(GENOTYPES / f"{name}.cell"), "--format", "nasnet", "-o", str(exported))[0] == 0
    cells = json.loads(exported.read_text())["cells"]
    if name == "nasnet_a":  # TF-slim nasnet_utils.NasNetANormalCell, as the reference writes it
        assert cells["normal"]["operations"][:2] == ["separable_5x5_2", "separable_3x3_2"]
        assert cells["normal"]["used_hiddenstates"] == [1, 0, 0, 0, 0, 0, 0]
    code, _, err = run("import", "nasnet", str(exported), "-o", str(imported))
    assert code == 0, err
    original, again = nasc.load(GENOTYPES / f"{name}.cell"), nasc.load(imported)
    assert nasc.structural_hash(again) == nasc.structural_hash(original)
    assert again.convention == original.convention


def test_darts_cells_export_as_the_reference_writes_them(tmp_path: Path) -> None:
    code, out, _ = run("export", str(DARTS_V2), "--format", "darts", "-o", "-")
    reference_line = next(
        line for line in REFERENCE_GENOTYPES.replace("\\\n", "").splitlines() if "DARTS_V2 =" in line
    )
    assert code == 0 and reference_line.replace(" ", "") in out.replace(" ", "")
    source = tmp_path / "exported.py"
    source.write_text(out)
    assert nasc.structural_hash(read_darts(out, "exported.py")) == nasc.structural_hash(nasc.load(DARTS_V2))


def test_what_a_format_cannot_say_is_one_clear_error(tmp_path: Path) -> None:
    code, _, err = run(
        "export", str(GENOTYPES / "nasnet_a.cell"), "--format", "darts", "-o", str(tmp_path / "x.py")
    )
    assert code == 1 and "read by `nasnet`, whose ops mean other things" in err
    concat = tmp_path / "concat.cell"
    concat.write_text(
        (GENOTYPES / "nasnet_a.cell")
        .read_text()
        .replace("h3 = add(sep_conv_5x5(h1)", "h3 = concat(sep_conv_5x5(h1)")
    )
    code, _, err = run("export", str(concat), "--format", "nasnet", "-o", str(tmp_path / "x.json"))
    assert code == 1 and "combines with `concat`; the format adds two ops" in err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.py").exists()
    hostile = tmp_path / "hostile.json"
    for text in ("[" * 100_000, '{"cells": {"normal": {"operations": "__import__(\'os\')"}}}', "9" * 5000):
        hostile.write_text(text)
        code, _, err = run("import", "nasnet", str(hostile), "-o", str(tmp_path / "y.cell"))
        assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert run("export", str(DARTS_V2))[0] == 2  # what to export must be said
