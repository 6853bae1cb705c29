"""Running exported models in onnxruntime: CUDA when it really works here, the CPU otherwise."""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np


def _quiet_options():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return options


@functools.cache
def cuda_usable() -> bool:
    """Whether onnxruntime has its CUDA provider and this machine has a CUDA driver to run it on.

    Checked before trying, because onnxruntime-gpu logs loud errors when the driver is missing."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def load_session(model: str | os.PathLike[str] | bytes, device: str = "auto"):
    """An InferenceSession on CUDA if asked or available and working, else on the CPU. Never fails for
    lack of a GPU unless `device="cuda"` was asked for explicitly."""
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else os.fspath(model)
    wants_cuda = device in ("auto", "cuda") and cuda_usable()
    if wants_cuda:
        try:
            session = ort.InferenceSession(
                source, _quiet_options(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
            )
            if "CUDAExecutionProvider" in session.get_providers():
                return session
        except Exception:  # a CUDA build of onnxruntime on a machine without a usable GPU
            if device == "cuda":
                raise
    if device == "cuda":
        raise RuntimeError("onnxruntime cannot use CUDA on this machine")
    return ort.InferenceSession(source, _quiet_options(), providers=["CPUExecutionProvider"])


def run(session, batch: np.ndarray) -> np.ndarray:
    """Run one batch (N, 3, H, W float32) through the model's single input and return its first output."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
