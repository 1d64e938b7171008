"""The networks: the two seed architectures, their deep baselines and seed ensembles (plain torch).

Model A (Chen & Luo): LSTM + Luong "general" attention + the 5-layer AtzoriNet CNN over a
``frames x channels`` EMG image, optionally stacked with a same-size wavelet-packet image.
Model B (LE-ConvMN, Guo et al. 2021): a ConvLSTM stack over "long exposure" RMS images
(electrodes x time) whose state is carried from one exposure to the next.

Every network starts with a fixed ``Standardize`` layer holding the training-set normalisation
statistics as buffers, so a checkpoint's weights carry them and online inference cannot
forget to apply them. ``models`` names them and builds them from a checkpoint's config.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

ATTENTIONS = ("context", "attentional")
LAYOUTS = ("image", "channels")
READOUTS = ("maps", "dense")


class Standardize(nn.Module):
    """``(x - mean) / std`` with statistics fixed at training time (broadcast over the last dims)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    def set(self, mean: Tensor, std: Tensor) -> None:
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(std.reshape(self.std.shape).clamp_min(1e-6))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class LuongAttention(nn.Module):
    """Luong "general" self-attention: s_ts = h_t^T W_a h_s, a_t = softmax_s, c_t = sum_s a_ts h_s.

    ``output="context"`` (the seed's eqs 8-10) passes on the contexts c_t. ``"attentional"`` passes on
    Luong et al.'s (2015, eq. 5) attentional hidden state tanh(W_c [c_t; h_t]), which keeps each step's
    own h_t beside what it attends to. On DB1 model A the two read alike: +0.001 ± 0.004 per window over
    10 subjects x 3 seeds (bench/results/training.md), so the contexts stay the default.
    """

    def __init__(self, hidden: int, output: str = "context") -> None:
        super().__init__()
        if output not in ATTENTIONS:
            raise ValueError(f"attention output must be one of {', '.join(ATTENTIONS)}, got {output!r}")
        self.w = nn.Linear(hidden, hidden, bias=False)
        self.combine = nn.Linear(2 * hidden, hidden, bias=False) if output == "attentional" else None

    def forward(self, h: Tensor) -> Tensor:  # h: (B, T, H) -> (B, T, H)
        scores = torch.bmm(self.w(h), h.transpose(1, 2))  # [b, t, s] = (W h_t) . h_s
        c = torch.bmm(torch.softmax(scores, dim=-1), h)
        if self.combine is None:
            return c
        return torch.tanh(self.combine(torch.cat([c, h], dim=-1)))


class AtzoriCNN(nn.Module):
    """Layers 3-7 of the seed table (AtzoriNet): a ``frames x width`` one-plane image to class logits.

    The first kernel spans the whole width (1 x width, zero-padded by 4 on each side), so the
    map is 9 wide whatever the width; two 3x3/3 max-pools bring 15 frames down to 1.
    A final adaptive average pool makes other frame counts work too (identity for 15).
    """

    def __init__(self, frames: int, width: int, n_classes: int, dropout: float, in_planes: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ZeroPad2d((4, 4, 0, 0)), nn.Conv2d(in_planes, 32, (1, width)), nn.ReLU(), nn.Dropout(dropout),
            nn.ZeroPad2d(1), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.Dropout(dropout), nn.MaxPool2d(3, 3),
            nn.ZeroPad2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(), nn.Dropout(dropout),
            nn.MaxPool2d(3, 3, ceil_mode=frames < 15),
            nn.ZeroPad2d((0, 0, 2, 2)), nn.Conv2d(64, 64, (5, 1)), nn.ReLU(), nn.Dropout(dropout),
            nn.Conv2d(64, n_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class LstmCnn(nn.Module):
    """Model A. Input ``(B, planes, frames, channels)``: plane 0 = EMG image, plane 1 = WP image.

    The LSTM reads ``frames`` steps of ``planes*channels`` values; the attention's outputs (contexts
    or attentional states, ``LuongAttention``) form a ``frames x hidden`` image for the CNN. Output:
    class logits (softmax is in the loss).
    """

    def __init__(self, frames: int, channels: int, planes: int, n_classes: int, hidden: int = 10,
                 dropout: float = 0.5, attention: str = "context") -> None:
        super().__init__()
        self.norm = Standardize((planes, 1, channels))
        self.lstm = nn.LSTM(planes * channels, hidden, batch_first=True)
        self.attention = LuongAttention(hidden, attention)
        self.cnn = AtzoriCNN(frames, hidden, n_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        b, p, t, c = x.shape
        h, _ = self.lstm(x.permute(0, 2, 1, 3).reshape(b, t, p * c))
        return self.cnn(self.attention(h).unsqueeze(1))


class Cnn(nn.Module):
    """Baseline "CNN" row of the seed's Table 2: AtzoriNet straight on the image planes."""

    def __init__(self, frames: int, channels: int, planes: int, n_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.norm = Standardize((planes, 1, channels))
        self.cnn = AtzoriCNN(frames, channels, n_classes, dropout, in_planes=planes)

    def forward(self, x: Tensor) -> Tensor:
        return self.cnn(self.norm(x))


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell (no peepholes): a single conv over [x, h] gives the i, f, o, g gates.

    ``dims=2`` convolves ``(channels, electrodes, frames)`` maps; ``dims=1`` convolves
    ``(channels, frames)`` sequences (the ``channels`` layout, electrodes as input channels).
    """

    def __init__(self, in_ch: int, hidden: int, kernel: int, dims: int = 2) -> None:
        super().__init__()
        self.hidden = hidden
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.conv = conv(in_ch + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


State = list[Tensor]


class LeConvMN(nn.Module):
    """Model B. One step: a ``(B, electrodes, frames)`` exposure and the previous state.

    ``layout="image"`` (the paper): the exposure is a one-channel ``electrodes x frames`` image
    and every cell is a 3x3 ConvLSTM over it, so a unit sees only neighbouring electrodes.
    ``layout="channels"`` (ours): electrodes are the input channels of 1-D ConvLSTM cells over
    the frames, so every unit mixes all electrodes (two Myo armbands are not a 2-D grid); on
    DB5 it reads the same exposures better, and 128, 64 channels cells run faster than the
    paper's 64, 32 image cells (``bench/results/training.md``, ``bench/results/models.json``).
    ``readout="maps"`` (the paper): the last cell has one map per output (joint) and a shared
    Linear reads each map, so each joint's memory is a single ConvLSTM channel. ``readout="dense"``
    (ours): the cells stop at ``hidden`` and one Linear reads the whole last hidden state into
    every output, as the LSTM baseline's does; on DB5 glove it lifted CC from 0.823 to 0.857 (3
    subjects x 6 seeds, from scratch), past the LSTM's 0.826 (``bench/results/training.md``).
    ``state`` is a flat list ``[h1, c1, h2, c2, ...]`` (TorchScript-friendly); pass ``[]`` to start.
    """

    def __init__(self, electrodes: int, frames: int, n_outputs: int, hidden: list[int], kernel: int = 3,
                 dropout: float = 0.0, layout: str = "image", readout: str = "maps") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; known: {', '.join(READOUTS)}")
        self.image = layout == "image"
        self.dense = readout == "dense"
        self.norm = Standardize((electrodes, 1))
        sizes = list(hidden) + ([] if self.dense else [n_outputs])
        first, dims = (1, 2) if self.image else (electrodes, 1)
        self.cells = nn.ModuleList(ConvLSTMCell(i, o, kernel, dims) for i, o in zip([first] + sizes[:-1], sizes))
        self.drop = nn.Dropout2d(dropout) if self.image else nn.Dropout1d(dropout)
        span = electrodes * frames if self.image else frames
        self.readout = nn.Linear(sizes[-1] * span, n_outputs) if self.dense else nn.Linear(span, 1)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        x = self.norm(x)
        if self.image:
            x = x.unsqueeze(1)
        if len(state) == 0:
            state = []
            for cell in self.cells:
                zeros = x.new_zeros([x.shape[0], cell.hidden] + list(x.shape[2:]))
                state += [zeros, zeros]
        new: State = []
        last = len(self.cells) - 1
        for k, cell in enumerate(self.cells):
            h, c = cell(x, state[2 * k], state[2 * k + 1])
            new += [h, c]
            x = self.drop(h) if k < last else h  # never between the last cell and the readout
        if self.dense:
            return self.readout(x.flatten(1)), new
        return self.readout(x.flatten(2)).squeeze(-1), new

    @staticmethod
    def mask_state(state: State, keep: Tensor) -> State:
        """Zero the state of the batch rows where ``keep`` is 0 (a new stream starts there)."""
        return [s * keep.view([-1] + [1] * (s.dim() - 1)) for s in state]


class StreamLstm(nn.Module):
    """LSTM baseline for model B: a stateful LSTM fed only the ``step`` newest frames of each exposure.

    It sees every RMS frame exactly once and carries (h, c) across exposures, the recurrent
    analogue of LE-ConvMN's memory; a Linear on the last hidden state gives the outputs.
    """

    def __init__(self, electrodes: int, n_outputs: int, step: int, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.step = step
        self.norm = Standardize((electrodes, 1))
        self.lstm = nn.LSTM(electrodes, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.readout = nn.Linear(hidden, n_outputs)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        x = self.norm(x)[:, :, -self.step:].transpose(1, 2)  # (B, step, electrodes)
        if state:
            out, (h, c) = self.lstm(x, (state[0], state[1]))
        else:
            out, (h, c) = self.lstm(x)
        return self.readout(out[:, -1]), [h, c]

    @staticmethod
    def mask_state(state: State, keep: Tensor) -> State:
        """Zero the state of the batch rows where ``keep`` is 0 (a new stream starts there)."""
        return [s * keep.view(1, -1, 1) for s in state]


class MeanOfMembers(nn.Module):
    """A seed ensemble of recurrent regressors: the members run side by side, their outputs averaged.

    Single model-B runs on DB5 differ by up to 0.08 CC between seeds (they overfit a few
    repetitions, each seed its own way); three averaged members scored 0.01-0.03 above their
    seeds' mean for LE-ConvMN and the LSTM alike, for three members' time (p99 3 ms per output, one
    thread; ``bench/results/training.md``). ``state`` holds the members' flat states one after another.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        outs: list[Tensor] = []
        new: State = []
        n = len(state) // len(self.members)  # one architecture, equal shares; 0 at the start
        for k, member in enumerate(self.members):
            y, s = member(x, state[k * n:(k + 1) * n])
            outs.append(y)
            new += s
        return torch.stack(outs).mean(0), new

    def mask_state(self, state: State, keep: Tensor) -> State:
        """Zero the state of the batch rows where ``keep`` is 0 (members share one state layout)."""
        return self.members[0].mask_state(state, keep)


class MeanOfClassifiers(nn.Module):
    """A seed ensemble of classifiers: the log of the members' mean class probabilities, so that a
    softmax of the output (what ``evaluate`` and the ``classify`` node take) is that mean.

    On DB1 model A, averaging three seeds' probabilities scored about 0.02 per window above a single
    seed (four subjects, ``bench/results/training.md``); ONNX Runtime serves three members for less
    than one costs in eager PyTorch (``bench/bench_models.py``).
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        probs = torch.stack([torch.softmax(member(x), dim=1) for member in self.members]).mean(0)
        return torch.log(probs.clamp_min(1e-12))


def ensemble(members: list[nn.Module]) -> nn.Module:
    """The seed ensemble matching the members' kind: recurrent regressors take and return a state."""
    recurrent = isinstance(members[0], (LeConvMN, StreamLstm))
    return MeanOfMembers(members) if recurrent else MeanOfClassifiers(members)
