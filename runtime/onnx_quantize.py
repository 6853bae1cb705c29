"""The int8 export: static quantization of a verified float export through onnxruntime's own tooling
(QDQ: QuantizeLinear/DequantizeLinear pairs around every quantizable op, which onnxruntime fuses into
int8 kernels), calibrated on real images, then measured as a deployment decision needs it: top-1 of
the int8 model against the float model on the dataset's test split, and their speed in onnxruntime.

Choices, as onnxruntime recommends them for x86 CPUs: unsigned 8-bit activations, signed 8-bit
weights per output channel (per-tensor scales lose depthwise filters of very different ranges),
MinMax calibration over images of the *training* split through the evaluation transform (the test
split only measures; calibrating on it would flatter the figure). Average pools are quantized as the
depthwise convolutions they are (runtime/onnx_pools.py): onnxruntime's int8 pool is a plain loop.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from nasc.runtime.onnx_pools import average_pools_as_convolutions

# --calibration-method → onnxruntime's CalibrationMethod
METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
CALIBRATION_METHODS = tuple(METHODS)
SCHEME = "int8 QDQ, static: u8 activations, s8 per-channel weights"


class QuantizationError(Exception):
    """The int8 model cannot be made or falls short of what was asked: one line."""


@dataclass(frozen=True)
class Int8Request:
    dataset: str  # digits, cifar10, imagefolder
    data_dir: str | None = None
    calibration_images: int = 256
    eval_images: int = 2000  # of the test split, in its order; 0: all of it
    method: str = "minmax"
    max_top1_drop: float = 1.0  # percentage points; more and nothing is written


@dataclass(frozen=True)
class Int8Report:
    dataset: str
    method: str
    calibration_images: int
    eval_images: int
    float_top1: float  # percent
    int8_top1: float
    float_ms: float  # batch 1, median, onnxruntime on the CPU
    int8_ms: float

    @property
    def speedup(self) -> float:
        return self.float_ms / self.int8_ms

    def metadata(self) -> dict[str, str]:
        return {
            "quantization": SCHEME,
            "calibration": f"{self.dataset}: {self.calibration_images} training images, "
            f"evaluation transform, {self.method}",
            "top1_float": f"{self.float_top1:.2f}",
            "top1_int8": f"{self.int8_top1:.2f}",
            "top1_images": f"{self.dataset} test split, {self.eval_images} images",
        }


@dataclass(frozen=True)
class Images:
    calibration: np.ndarray  # (N, 3, S, S) float32, from the training split
    test: np.ndarray
    test_labels: np.ndarray


def quantize(float_model: bytes, request: Int8Request, images: Images) -> tuple[bytes, Int8Report]:
    """The int8 model of a float export (batch 1, static shapes), calibrated and measured."""
    from nasc.runtime.onnx_runtime import load_session

    calibration, test_images, test_labels = images.calibration, images.test, images.test_labels
    float_session = load_session(float_model, device="cpu")  # int8 runs on the CPU: so does float here
    with tempfile.TemporaryDirectory(prefix="nasc-int8-") as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        # Pools as convolutions, for the quantizer only: the float export keeps onnxruntime's fast pools
        rewritten, _ = average_pools_as_convolutions(onnx.load_from_string(float_model))
        source.write_bytes(rewritten.SerializeToString())
        name = float_session.get_inputs()[0].name
        _quantize_static(source, target, calibration, request.method, name)
        int8_model = target.read_bytes()
    int8_session = load_session(int8_model, device="cpu")
    float_top1 = _top1(float_session, test_images, test_labels)
    int8_top1 = _top1(int8_session, test_images, test_labels)
    float_ms, int8_ms = _speeds(float_session, int8_session, test_images[:1])
    report = Int8Report(
        request.dataset,
        request.method,
        len(calibration),
        len(test_labels),
        float_top1,
        int8_top1,
        float_ms,
        int8_ms,
    )
    if float_top1 - int8_top1 > request.max_top1_drop:
        raise QuantizationError(
            f"the int8 model's top-1 is {int8_top1:.2f}% against the float model's {float_top1:.2f}% on "
            f"{len(test_labels)} {request.dataset} test images, a drop past --max-top1-drop "
            f"{request.max_top1_drop:g} points; nothing was written (more --calibration-images, or "
            "another --calibration-method, may help)"
        )
    return int8_model, report


def load_images(request: Int8Request, image_size: int, evaluation) -> Images:
    """Calibration images from the training split and the test split to measure on, all through the
    evaluation transform (`evaluation`: the preset's DataConfig, for image folders)."""
    from nasc.runtime.data import DataError, load_dataset

    try:
        splits = load_dataset(
            request.dataset,
            request.data_dir,
            image_size=image_size,
            augment=False,
            evaluation=evaluation,
        )
    except DataError as error:
        raise QuantizationError(str(error)) from None
    calibration = _take(splits.train, request.calibration_images, spread=True)[0]
    if calibration.shape[-1] != image_size:
        raise QuantizationError(
            f"{request.dataset} gives {calibration.shape[-1]}-pixel images and the export takes "
            f"{image_size}: export with --image-size {calibration.shape[-1]}"
        )
    test_images, test_labels = _take(splits.test, request.eval_images or len(splits.test), spread=False)
    return Images(calibration, test_images, test_labels)


def _take(dataset, count: int, spread: bool) -> tuple[np.ndarray, np.ndarray]:
    """`count` samples: evenly spread over the dataset (calibration: every class, not the first
    few), or its first `count` in order (the test figure, reproducible by anyone)."""
    count = min(count, len(dataset))
    indices = np.linspace(0, len(dataset) - 1, count).round().astype(int) if spread else range(count)
    images, labels = zip(*(dataset[int(i)] for i in indices), strict=True)
    return np.stack([np.asarray(image, np.float32) for image in images]), np.asarray(labels)


def _quantize_static(source: Path, target: Path, calibration: np.ndarray, method: str, name: str) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self.batches = iter({name: image[None]} for image in calibration)

        def get_next(self):
            return next(self.batches, None)

    prepared = source.with_name("prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(target),
        Reader(name),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, METHODS[method]),
    )


def _top1(session, images: np.ndarray, labels: np.ndarray) -> float:
    from nasc.runtime.onnx_runtime import run

    hits = sum(
        int(np.argmax(run(session, image[None])[0]) == label)
        for image, label in zip(images, labels, strict=True)
    )
    return 100.0 * hits / len(labels)


def _speeds(float_session, int8_session, image: np.ndarray, rounds: int = 7, repeats: int = 5):
    """Median milliseconds a batch-1 run of each, in alternating rounds so that the machine's
    drift hits both alike."""
    samples: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(rounds):
        for which, session in enumerate((float_session, int8_session)):
            feed = {session.get_inputs()[0].name: image}
            session.run(None, feed)
            start = time.perf_counter()
            for _ in range(repeats):
                session.run(None, feed)
            samples[which].append(1e3 * (time.perf_counter() - start) / repeats)
    return statistics.median(samples[0]), statistics.median(samples[1])
