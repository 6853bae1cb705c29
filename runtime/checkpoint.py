"""What a `nasc train` checkpoint holds beyond tensors: its format tag, the state of every random
generator (so a resumed run draws what the unbroken one would), and which weights it evaluated.
Checkpoints are read with `weights_only=True`: only tensors, containers and the types named here."""

from __future__ import annotations

import random

import numpy as np
import torch

CHECKPOINT_FORMAT = "nasc-checkpoint-1"
# Checkpoints of earlier versions hold numpy's random state as an array: these types rebuild one
# and nothing else (an array of objects would still need globals that are not allowed).
_NUMPY_CORE = getattr(np, "_core", None) or np.core  # numpy 2 renamed it
NUMPY_RNG_TYPES = (_NUMPY_CORE.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32)))


def evaluated_weights(checkpoint: object) -> object | None:
    """The state_dict a checkpoint of this format was evaluated with (its moving average where it
    kept one); None for anything else."""
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        return None
    ema = checkpoint.get("ema")
    return ema["model"] if isinstance(ema, dict) else checkpoint.get("model")


def rng_state() -> dict:
    # numpy's key array as a tensor, so the checkpoint reads back with weights_only (no numpy types).
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian)
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": numpy_state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
