"""ONNX export that proves its own result: build the emitted module in eval mode, export with
torch.onnx, run onnx's full checker and shape inference, run the model in onnxruntime on a fixed
random input, compare with PyTorch, and only then write the file (atomically), with the genotype's
provenance in its metadata."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from nasc.compiler import api, ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.hashing import structural_hash
from nasc.compiler.options import EmitOptions
from nasc.diagnostics import printable
from nasc.fileio import OutputError, check_output, write_output
from nasc.runtime.onnx_align import Alignment, align_channels
from nasc.runtime.onnx_quantize import (
    CALIBRATION_METHODS,
    Images,
    Int8Report,
    Int8Request,
    QuantizationError,
    load_images,
    quantize,
)
from nasc.version import __version__

# ONNX and PyTorch run the same float32 arithmetic in different orders; over ~700 convolutions the
# difference stays around 1e-6 of the output range. More than this means a wrong graph, not rounding.
RELATIVE_TOLERANCE = 1e-4
MIN_OPSET = 18  # the lowest opset torch.onnx's exporter emits directly
# Opset 19 gave AveragePool dilations, and onnxruntime's CPU kernel for it since is a plain loop: a
# 3x3 average of a NASNet-A mobile cell runs 7x slower at opset 19+ than at 18, where it is MLAS's
# (AveragePool was 19 % of the network's time at opset 20). Nothing nasc emits needs a newer opset.
DEFAULT_OPSET = 18
# Channels padded to a multiple of 16 (runtime/onnx_align.py): onnxruntime's x86 kernels take blocks
# of 16 (AVX-512) or 8 (AVX2) channels and fall back to slow ones otherwise.
DEFAULT_ALIGNMENT = 16
METADATA_PREFIX = "nasc."


class ExportError(Exception):
    """A user-facing export failure: one line, no traceback."""


@dataclass
class ExportReport:
    path: str
    opset: int
    batch: str
    image_size: int
    nodes: int
    size_bytes: int
    max_abs_diff: float
    max_rel_diff: float
    op_mix: list[tuple[str, int]]
    static_graph: bool
    provider: str
    alignment: Alignment
    int8: Int8Report | None
    metadata: dict[str, str] = field(default_factory=dict)


def supported_opsets() -> range:
    return range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1)


def provenance(
    genotype: ir.Genotype, preset_name: str, preset, num_classes: int, image_size: int, batch: str
) -> dict[str, str]:
    """What the exported file records of its origin; `preset` is the compiler's (never read back
    from the emitted module)."""
    penultimate = preset.width * convention_of(genotype).penultimate_per_filter(genotype)
    source = genotype.source if genotype.source is not None else api.format(genotype)
    return {
        "genotype": genotype.name,
        "convention": genotype.convention,
        "structural_hash": structural_hash(genotype),
        "preset": preset_name,
        "scale": f"{preset.cells_per_stage}@{penultimate}",
        "num_classes": str(num_classes),
        "image_size": str(image_size),
        "batch": batch,
        "nasc_version": __version__,
        "source_file": printable(str(genotype.filename or ""), keep_newlines=False),
        "cell_source": source,
    }


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The nasc provenance stored in an exported model."""
    model = onnx.load(os.fspath(path), load_external_data=False)
    return {
        p.key[len(METADATA_PREFIX) :]: p.value
        for p in model.metadata_props
        if p.key.startswith(METADATA_PREFIX)
    }


def export_onnx(
    genotype: ir.Genotype,
    options: EmitOptions,
    output: str,
    *,
    image_size: int | None = None,
    opset: int | None = None,
    batch: str = "1",
    seed: int = 0,
    weights: str | None = None,
    align: int = DEFAULT_ALIGNMENT,
    int8: Int8Request | None = None,
) -> ExportReport:
    """Export the inference build (`fuse()`) with its channels aligned to `align` (1: as they are),
    check it, and verify it in onnxruntime against the network as trained; with `int8`, quantize the
    verified model and measure it (runtime/onnx_quantize.py). The file is written only when every
    step passes."""
    import torch

    from nasc.runtime.build import BuildError, build_network

    _check_request(output, opset, batch, align, int8)
    try:
        built = build_network(genotype, options, image_size=image_size, weights=weights)
    except BuildError as error:
        raise ExportError(str(error)) from None
    model, size = built.model.eval(), built.image_size
    images = _int8_images(int8, genotype, options, size) if int8 is not None else None
    dynamic = batch == "dynamic"
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(2 if dynamic else int(batch), 3, size, size, generator=generator)
    inference = model.fuse()
    inference.set_channels_last(False)  # ONNX has no memory formats; the exporter would gather pixels
    proto = _exported(inference, example, opset or DEFAULT_OPSET, dynamic)
    opset = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
    proto, alignment = align_channels(proto, align)
    metadata = provenance(genotype, built.preset, built.settings, model.num_classes, size, batch)
    metadata["channel_alignment"] = str(alignment.multiple if alignment.skipped is None else 1)
    if weights is not None:  # which weights: the file's digest, as the file itself may move
        metadata["weights_sha256"] = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    _add_metadata(proto, metadata)
    _check_model(proto)
    data = proto.SerializeToString()
    session, max_abs, max_rel = _verified(data, model, example)
    quantized = None
    if int8 is not None:
        proto, quantized = _quantized(data, int8, images)
        metadata = {**metadata, **quantized.metadata()}
        _add_metadata(proto, metadata)
        data = proto.SerializeToString()
    try:
        write_output(output, data)
    except OutputError as error:
        raise ExportError(str(error)) from None
    ops = Counter(node.op_type for node in proto.graph.node)
    return ExportReport(
        path=output,
        opset=opset,
        batch=batch,
        image_size=size,
        nodes=len(proto.graph.node),
        size_bytes=len(data),
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        op_mix=ops.most_common(),
        static_graph="Shape" not in ops,
        provider=session.get_providers()[0],
        alignment=alignment,
        int8=quantized,
        metadata=metadata,
    )


def _add_metadata(proto, metadata: dict[str, str]) -> None:
    """The provenance into the model's metadata_props, replacing any already there."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value


def _int8_images(request: Int8Request, genotype: ir.Genotype, options: EmitOptions, size: int) -> Images:
    """Calibration and test images through the preset's evaluation transform, read before the
    export's slow work so that a missing dataset fails first."""
    convention = convention_of(genotype)
    evaluation = convention.data[options.preset or next(iter(convention.presets))]
    try:
        return load_images(request, size, evaluation)
    except QuantizationError as error:
        raise ExportError(str(error)) from None


def _quantized(data: bytes, request: Int8Request, images: Images) -> tuple[onnx.ModelProto, Int8Report]:
    """The int8 model of the verified float one, checked like it, and what quantization measured."""
    try:
        int8_data, report = quantize(data, request, images)
    except QuantizationError as error:
        raise ExportError(str(error)) from None
    proto = onnx.load_from_string(int8_data)
    _check_model(proto)
    return proto, report


def _check_request(output: str, opset: int | None, batch: str, align: int, int8: Int8Request | None) -> None:
    """What can be refused before the network is built: an opset, a batch, an alignment, a place to
    write."""
    opsets = supported_opsets()
    if opset is not None and opset not in opsets:
        raise ExportError(
            f"opset {opset} is not supported: torch.onnx exports opsets {opsets[0]} to {opsets[-1]}"
        )
    if batch != "dynamic" and (not batch.isdigit() or int(batch) < 1):
        raise ExportError(f"--batch must be a positive number or 'dynamic', not {batch!r}")
    if align < 1:
        raise ExportError(f"--align must be 1 (none) or more channels, not {align}")
    if int8 is not None and batch != "1":
        raise ExportError("--int8 exports batch 1: calibration and the measured speed are per image")
    if int8 is not None and int8.method not in CALIBRATION_METHODS:
        raise ExportError(f"--calibration-method must be one of {', '.join(CALIBRATION_METHODS)}")
    try:
        check_output(output, force=True)  # fail before the export, not after it
    except OutputError as error:
        raise ExportError(str(error)) from None


def _exported(model, example, opset: int, dynamic: bool):
    """torch.onnx's dynamo export, optimized: its ModelProto."""
    import torch

    dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=4096)}} if dynamic else None
    # no_grad: an inference graph (a strided 1x1 convolution takes its training form under autograd)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=opset,
                optimize=True,
                dynamic_shapes=dynamic_shapes,
                input_names=["images"],
                output_names=["logits"],
                verbose=False,
            )
        except Exception as error:  # the exporter's own failure, reported in one line
            raise ExportError(
                f"torch.onnx could not export the model: {str(error).splitlines()[0]}"
            ) from None
    return program.model_proto


def _check_model(proto) -> None:
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as error:
        raise ExportError(
            f"the exported model fails the ONNX checker: {str(error).splitlines()[0]}"
        ) from None


def _verified(data: bytes, model, example):
    """The model run in onnxruntime against PyTorch on the same input: (session, max absolute and
    relative differences), or ExportError past RELATIVE_TOLERANCE."""
    import numpy as np
    import torch

    from nasc.runtime.onnx_runtime import load_session, run

    session = load_session(data)
    with torch.no_grad():
        expected = model(example).numpy()
    got = run(session, example.numpy())
    max_abs = float(np.max(np.abs(got - expected)))
    max_rel = max_abs / max(float(np.max(np.abs(expected))), 1e-12)
    if not max_rel <= RELATIVE_TOLERANCE:
        raise ExportError(
            f"onnxruntime disagrees with PyTorch: max relative difference {max_rel:.2e} exceeds "
            f"{RELATIVE_TOLERANCE:.0e} (max absolute {max_abs:.2e}); nothing was written"
        )
    return session, max_abs, max_rel
