"""Running a model over windows offline: what training's validation, ``evaluate`` and the benches share.

``predict_stream`` feeds one row at a time with the state carried, as the serving node does, so
an offline score is the score the graph would get.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .datasets import Windows, contiguous_runs


@torch.inference_mode()
def predict_logits(model: nn.Module, x: np.ndarray, device: torch.device, batch: int = 1024) -> np.ndarray:
    """Logits for every row of ``x`` (model put in eval mode)."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).to(device)).float().cpu().numpy()
           for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


@torch.inference_mode()
def predict_stream(model: nn.Module, w: Windows, device: torch.device) -> np.ndarray:
    """Outputs for every row, one row at a time with the state carried, reset at each gap (like the node)."""
    model.eval()
    preds = []
    for run in contiguous_runs(w):
        xt = torch.from_numpy(np.ascontiguousarray(w.x[run])).to(device)
        state: list = []
        for i in range(len(xt)):
            y, state = model(xt[i:i + 1], state)
            preds.append(y.float().cpu().numpy())
    return np.concatenate(preds) if preds else np.empty((0, 0), dtype=np.float32)
