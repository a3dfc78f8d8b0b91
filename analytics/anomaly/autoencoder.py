"""Autoencoders over sliding windows, trained on CPU with PyTorch (optional dependency): a small dense
one (:class:`AutoencoderDetector`, in the default ensemble) and an LSTM sequence-to-sequence one
(:class:`LSTMAutoencoderDetector`, opt-in).

``torch`` is imported lazily: without it :attr:`AutoencoderDetector.available` is False and the
ensemble skips the detector.

Usage::

    import numpy as np
    from analytics.anomaly.autoencoder import AutoencoderDetector

    det = AutoencoderDetector()                  # or LSTMAutoencoderDetector()
    if det.available:
        out = det.score(np.sin(np.arange(3_000) / 10))
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._rolling import adaptive_threshold, normalised_score, refit_schedule, target
from .model import DetectorOutput


def sliding_windows(x: np.ndarray, length: int) -> np.ndarray:
    """Row ``t`` holds ``x[t - length + 1 : t + 1]`` (rows before ``length - 1`` are NaN)."""
    out = np.full((x.size, length), np.nan)
    if x.size >= length:
        out[length - 1 :] = np.lib.stride_tricks.sliding_window_view(x, length)
    return out


@dataclass
class AutoencoderDetector:
    """Reconstruction error of the last ``length`` points under an autoencoder fitted on the past.

    Every ``fit_every`` points (from ``warmup``) a ``length → hidden → code → hidden → length`` network
    is trained for ``epochs`` (more when needed to make ``min_steps`` gradient steps of 256 windows) on
    (at most ``max_train``) windows of the trailing ``fit_window`` points,
    scaled by that window's median and IQR. The error of a new window is divided by the training
    errors' ``train_quantile`` and then thresholded like the statistical detectors. Collective
    anomalies (a changed shape, a flat line where there should be a cycle) show up as errors even
    when every value is in range.
    """

    length: int = 24
    hidden: int = 32
    code: int = 6
    epochs: int = 40
    max_train: int = 2000
    warmup: int = 600
    fit_every: int = 2000
    fit_window: int = 3000
    train_quantile: float = 0.99
    k: float = 1.5
    margin: float = 1.0
    quantile: float = 0.995
    history: int = 3000
    short_history_boost: float = 0.25
    seed: int = 0
    min_steps: int = 0
    name: str = "autoencoder"

    @property
    def available(self) -> bool:
        return importlib.util.find_spec("torch") is not None

    def _model(self, torch: Any) -> Any:
        """The network: windows ``(batch, length)`` in, reconstructions of the same shape out."""
        nn = torch.nn
        return nn.Sequential(
            nn.Linear(self.length, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.code),
            nn.ReLU(),
            nn.Linear(self.code, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.length),
        )

    def _fit(self, torch: Any, windows: np.ndarray) -> Any:
        torch.manual_seed(self.seed)
        model = self._model(torch)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        data = torch.as_tensor(windows, dtype=torch.float32)
        gen = torch.Generator().manual_seed(self.seed)
        batches = -(-data.shape[0] // 256)
        # a small training set still gets ``min_steps`` gradient steps (more epochs)
        for _ in range(max(self.epochs, -(-self.min_steps // batches))):
            perm = torch.randperm(data.shape[0], generator=gen)
            for i in range(0, data.shape[0], 256):
                batch = data[perm[i : i + 256]]
                opt.zero_grad()
                loss = ((model(batch) - batch) ** 2).mean()
                loss.backward()
                opt.step()
        return model

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        if not self.available:
            raise RuntimeError("AutoencoderDetector needs torch: pip install torch==2.13.0")
        import torch

        torch.set_num_threads(1)
        x = target(values)
        n = x.size
        wins = sliding_windows(x, self.length)
        valid = np.isfinite(wins).all(axis=1)
        stat = np.full(n, np.nan)
        rng = np.random.default_rng(self.seed)
        for start, end in refit_schedule(n, max(self.warmup, self.length * 4), self.fit_every):
            lo = max(0, start - self.fit_window)
            past = x[lo:start]
            centre = float(np.nanmedian(past))
            spread = float(np.subtract(*np.nanquantile(past, [0.75, 0.25])))
            spread = max(spread, float(np.nanstd(past)), 1e-9 * (1 + abs(centre)))
            train = wins[lo + self.length - 1 : start]
            train = train[valid[lo + self.length - 1 : start]]
            if train.shape[0] < 4 * self.length:
                continue
            if train.shape[0] > self.max_train:
                train = train[rng.choice(train.shape[0], self.max_train, replace=False)]
            train = (train - centre) / spread
            model = self._fit(torch, train)
            with torch.no_grad():
                err_train = ((model(torch.as_tensor(train, dtype=torch.float32)).numpy() - train) ** 2).mean(
                    1
                )
                seg = (wins[start:end] - centre) / spread
                ok = valid[start:end]
                rec = model(torch.as_tensor(np.nan_to_num(seg), dtype=torch.float32)).numpy()
            err = ((rec - seg) ** 2).mean(1)
            ref = max(float(np.quantile(err_train, self.train_quantile)), 1e-9)
            stat[start:end] = np.where(ok, np.sqrt(err / ref), np.nan)
        thr = adaptive_threshold(
            stat, self.history, 50, self.quantile, self.k, self.margin, self.short_history_boost
        )
        nan = np.full(n, np.nan)
        return DetectorOutput(normalised_score(stat, thr), nan, nan.copy(), nan.copy())


@dataclass
class LSTMAutoencoderDetector(AutoencoderDetector):
    """The same detector with an LSTM sequence-to-sequence autoencoder instead of the dense one.

    An LSTM encoder reads the window point by point; its last hidden state, squeezed to ``code``
    numbers, is repeated ``length`` times and an LSTM decoder unrolls it back into the window. It
    models order within the window (a dip before a peak is not a peak before a dip) where the dense
    network sees a bag of positions. Opt-in: on the NAB benchmark it scores about like the dense one and
    costs several times the CPU (see docs/anomaly.md), so the default ensemble keeps the dense one. Use
    ``AnomalyDetector([..., LSTMAutoencoderDetector()])`` or ``detectors: [..., lstm]`` in the analytics
    service's model config.
    """

    epochs: int = 30
    min_steps: int = 300
    name: str = "lstm"

    def _model(self, torch: Any) -> Any:
        nn = torch.nn
        length, hidden, code = self.length, self.hidden, self.code

        class Seq2Seq(nn.Module):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.encoder = nn.LSTM(1, hidden, batch_first=True)
                self.squeeze = nn.Linear(hidden, code)
                self.decoder = nn.LSTM(code, hidden, batch_first=True)
                self.out = nn.Linear(hidden, 1)

            def forward(self, windows: Any) -> Any:
                _, (h, _) = self.encoder(windows.unsqueeze(-1))
                z = torch.tanh(self.squeeze(h[-1]))
                decoded, _ = self.decoder(z.unsqueeze(1).repeat(1, length, 1))
                return self.out(decoded).squeeze(-1)

        return Seq2Seq()
