"""The training loop every deep model shares, built to be trusted.

- **Seeded and deterministic on CPU.** :func:`seeded` forks torch's global RNG (the caller's
  RNG state is left untouched), seeds it, turns on ``torch.use_deterministic_algorithms`` for
  the duration, and hands back a seeded ``torch.Generator`` that drives batch shuffling. Two
  fits with the same ``random_state`` on the same machine and thread count give identical
  weights.
- **Device.** :func:`resolve_device` maps ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``
  (CUDA when present, else CPU) to a ``torch.device``; asking for CUDA without it is an error.
- **Progress.** A tqdm bar over epochs shows the mean loss and, with a validation split, the
  validation MAP (mean of both retrieval directions).
- **Early stopping** on validation MAP (``patience`` epochs without an improvement larger than
  ``min_delta``); the best epoch's weights are restored at the end.
- **Divergence.** A NaN / infinite loss, a loss above ``max_loss`` or a non-finite gradient
  stops training with :class:`TrainingDivergedError` naming the epoch and batch.
- **Callback.** ``callback(dict(epoch=, n_epochs=, loss=, val_map=, ...))`` after every epoch
  (``epoch`` is 1-based); returning ``False`` stops training (the app's "stop" button).

Mini-batches are index tensors drawn from ``torch.randperm`` with the seeded generator rather
than a ``DataLoader``: the data already sit in memory as tensors, and slicing them is far faster
than collating item by item. Views that stay on disk
(:class:`crossmodal_core.data.lazy.LazyArray`) are streamed instead: :class:`RowBlockBatches`
(a ``DataLoader`` over seeded, block-shuffled row blocks) supplies ``batches(epoch)``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from crossmodal_core.metrics import map_both_directions

__all__ = [
    "TrainingDivergedError",
    "TrainingResult",
    "resolve_device",
    "resolve_seed",
    "seeded",
    "minibatches",
    "validation_map",
    "fit_loop",
    "optimizer_step",
    "RowBlockBatches",
    "streamed_batches",
]


class TrainingDivergedError(RuntimeError):
    """The loss (or a gradient) became NaN, infinite or exploded during training."""

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None,
                 value: float | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.value = value


@dataclass
class TrainingResult:
    """What :func:`fit_loop` returns: per-epoch history and the early-stopping outcome."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_map: float | None = None
    stopped_early: bool = False
    stopped_by_callback: bool = False


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; ``"cuda"`` without CUDA -> ``ValueError``."""
    if device is None:
        device = "cpu"
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; use 'cpu', 'cuda' or 'auto'")
    return dev


def resolve_seed(random_state: int | np.random.Generator | np.random.RandomState | None) -> int:
    """An integer seed from a scikit-learn style ``random_state`` (``None`` -> fresh entropy)."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))
    if isinstance(random_state, (np.random.Generator,)):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    raise ValueError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}")


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[torch.Generator]:
    """Run a block with torch's RNG seeded and deterministic algorithms on.

    The global RNG state (CPU, and the CUDA device when used) is restored on exit, and so is the
    deterministic-algorithms flag. Yields a CPU ``torch.Generator`` seeded with ``seed`` for
    shuffling.
    """
    cuda_devices = [device] if device is not None and device.type == "cuda" else []
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        # warn_only: a CUDA op without a deterministic kernel warns instead of failing the fit
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def minibatches(n_samples: int, batch_size: int, generator: torch.Generator | None = None,
                shuffle: bool = True, drop_last: bool = False) -> list[torch.Tensor]:
    """Split ``range(n_samples)`` into index tensors of ``batch_size`` (the last may be short).

    ``drop_last`` drops a short last batch unless it is the only one; a trailing batch of a
    single sample is always merged into the previous one (batch statistics need two rows).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n_samples, generator=generator) if shuffle else torch.arange(n_samples)
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and (drop_last and len(batches[-1]) < batch_size or len(batches[-1]) < 2):
        last = batches.pop()
        if not drop_last:
            batches[-1] = torch.cat([batches[-1], last])
    return batches


class RowBlockBatches(torch.utils.data.IterableDataset):
    """Mini-batches of views that stay on disk, streamed in row blocks (never all in memory).

    Each epoch (:meth:`set_epoch`) reads the blocks of ``block_rows`` rows in a seeded random
    order; each block (every view's rows ``start..stop``, read together: whole chunks of the
    file) is passed through ``prepare(i, block)`` (the input standardisation), its rows are
    shuffled, and it is cut into ``batch_size`` batches, yielded as tuples ``(x_0, x_1, ...,
    y)`` of tensors (``y`` is ``None`` without labels). So every row is seen once per epoch,
    memory is one block, and two runs with the same ``seed`` see the same batches. A short last
    batch of a block is dropped with ``drop_last`` (a batch of one row always is).

    Wrap it in ``torch.utils.data.DataLoader(dataset, batch_size=None)`` (the batches are
    made here, where the block is).
    """

    def __init__(self, views: list[Any], labels: np.ndarray | None, batch_size: int, seed: int,
                 block_rows: int | None = None, prepare: Callable[[int, np.ndarray], np.ndarray] | None = None,
                 drop_last: bool = False):
        from crossmodal_core.models.linear.streaming import block_rows_for_views

        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.views, self.labels, self.batch_size, self.seed = list(views), labels, int(batch_size), int(seed)
        self.n = int(self.views[0].shape[0])
        rows = block_rows_for_views(self.views, block_rows)
        self.block_rows = max(rows, self.batch_size)
        self.prepare, self.drop_last, self.epoch = prepare, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple]:
        rng = np.random.default_rng([self.seed, self.epoch])
        starts = np.arange(0, self.n, self.block_rows)
        for start in starts[rng.permutation(len(starts))]:
            stop = min(self.n, int(start) + self.block_rows)
            blocks = []
            for i, v in enumerate(self.views):
                block = np.asarray(v[int(start):stop], dtype=np.float32)
                blocks.append(self.prepare(i, block) if self.prepare is not None else block)
            lab = None if self.labels is None else np.asarray(self.labels[int(start):stop])
            order = rng.permutation(stop - int(start))
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo:lo + self.batch_size]
                if len(idx) < 2 or (self.drop_last and len(idx) < self.batch_size and len(order) >= self.batch_size):
                    continue
                yield tuple(torch.from_numpy(np.ascontiguousarray(b[idx])) for b in blocks) + (
                    None if lab is None else torch.as_tensor(lab[idx]),)


def streamed_batches(dataset: RowBlockBatches) -> Callable[[int], Iterable[tuple]]:
    """``batches(epoch)`` for :func:`fit_loop`: a ``DataLoader`` over ``dataset`` for that epoch."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0,
                                         collate_fn=lambda batch: batch)

    def batches(epoch: int) -> Iterable[tuple]:
        dataset.set_epoch(epoch)
        return loader

    return batches


def validation_map(x: np.ndarray, y: np.ndarray, labels_x: np.ndarray,
                   labels_y: np.ndarray | None = None) -> tuple[float, float]:
    """(x->y, y->x) cosine MAP, via :func:`crossmodal_core.metrics.map_both_directions`."""
    labels_y = labels_x if labels_y is None else labels_y
    xy, yx = map_both_directions(x, y, labels_x, labels_y, metric="cosine")
    return float(xy), float(yx)


def _as_loss(out: Any) -> tuple[torch.Tensor | float, dict[str, float]]:
    """Split a step's return value into the loss and extra logged scalars."""
    if isinstance(out, dict):
        if "loss" not in out:
            raise ValueError("a training step returning a dict must include a 'loss' entry")
        extras = {k: float(v.detach() if torch.is_tensor(v) else v) for k, v in out.items() if k != "loss"}
        return out["loss"], extras
    return out, {}


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One manual update: zero ``optimizer``'s gradients (set to ``None``), back-propagate the
    0-d ``loss``, step. For the steps of a :func:`fit_loop` run with ``optimizer=None``, where
    a model alternates its own updates (UGACH's D then G, AGAH's critics then encoders)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def fit_loop(
    module: nn.Module,
    step: Callable[[torch.Tensor], Any],
    n_samples: int,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator | None = None,
    validate: Callable[[], tuple[float, float]] | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    progress: bool = True,
    desc: str = "training",
    max_loss: float = 1e8,
    grad_clip: float | None = None,
    drop_last: bool = False,
    batches: Callable[[int], Iterable[torch.Tensor]] | None = None,
) -> TrainingResult:
    """Train ``module`` for up to ``epochs`` epochs.

    Parameters
    ----------
    module : torch.nn.Module
        Everything trained (its ``state_dict`` is what early stopping restores).
    step : callable
        ``step(batch_indices) -> loss`` where ``loss`` is a scalar tensor, or a dict with a
        ``"loss"`` entry plus extra scalars to log. With ``optimizer=None`` the step does its own
        backward / optimizer steps (adversarial training) and may return floats.
    n_samples, batch_size : int
        Mini-batches are index tensors over ``range(n_samples)`` (see :func:`minibatches`),
        unless ``batches(epoch)`` supplies them.
    optimizer : torch.optim.Optimizer or None
        Zeroed, back-propagated and stepped by the loop when given.
    generator : torch.Generator
        Drives shuffling (from :func:`seeded`).
    validate : callable or None
        ``validate() -> (map_xy, map_yx)`` on the validation split, called with the module in
        eval mode and under ``torch.no_grad`` after every epoch.
    patience : int or None
        Stop after this many epochs without a validation-MAP gain above ``min_delta``.
    restore_best : bool
        With ``validate``, load the best epoch's weights back at the end.
    callback : callable or None
        Called after every epoch with ``dict(epoch, n_epochs, loss, val_map, val_map_xy,
        val_map_yx, seconds, **extras)``; returning ``False`` stops training.
    max_loss : float
        A loss whose magnitude exceeds this counts as diverged.
    grad_clip : float or None
        Clip the global gradient norm (``None``: no clipping; the norm is still checked).

    Returns
    -------
    TrainingResult

    Raises
    ------
    TrainingDivergedError
        On a NaN/inf/exploding loss or a non-finite gradient norm.
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    result = TrainingResult()
    best_state: dict[str, torch.Tensor] | None = None
    best_score = -math.inf
    epochs_without_gain = 0
    params = [p for p in module.parameters() if p.requires_grad]

    from tqdm.auto import tqdm

    bar = tqdm(range(1, int(epochs) + 1), desc=desc, disable=not progress, leave=False, unit="epoch")
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            module.train()
            epoch_batches = (batches(epoch) if batches is not None
                             else minibatches(n_samples, batch_size, generator, drop_last=drop_last))
            total, count = 0.0, 0
            extras_sum: dict[str, float] = {}
            for b, idx in enumerate(epoch_batches, start=1):
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                loss, extras = _as_loss(step(idx))
                value = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
                if not math.isfinite(value) or abs(value) > max_loss:
                    what = "NaN" if math.isnan(value) else ("infinite" if math.isinf(value) else "exploding")
                    raise TrainingDivergedError(
                        f"training diverged: {what} loss {value:.4g} at epoch {epoch}, batch {b}"
                        " (lower the learning rate, add regularisation or check the input scale)",
                        epoch=epoch, batch=b, value=value)
                if optimizer is not None:
                    if not torch.is_tensor(loss) or not loss.requires_grad:
                        raise ValueError("the training step must return a differentiable loss tensor")
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else math.inf)
                    if not torch.isfinite(norm):
                        raise TrainingDivergedError(
                            f"training diverged: non-finite gradient norm at epoch {epoch}, batch {b}",
                            epoch=epoch, batch=b, value=float(norm))
                    optimizer.step()
                total += value
                count += 1
                for k, v in extras.items():
                    extras_sum[k] = extras_sum.get(k, 0.0) + v
            if count == 0:
                raise ValueError("an epoch produced no mini-batch (too few samples?)")
            record: dict[str, Any] = {
                "epoch": epoch,
                "n_epochs": int(epochs),
                "loss": total / count,
                "val_map": None,
                "val_map_xy": None,
                "val_map_yx": None,
            }
            record.update({k: v / count for k, v in extras_sum.items()})
            if validate is not None:
                module.eval()
                with torch.no_grad():
                    xy, yx = validate()
                score = 0.5 * (xy + yx)
                record.update(val_map=score, val_map_xy=xy, val_map_yx=yx)
                if score > best_score + min_delta or best_state is None:
                    best_score = score
                    result.best_epoch, result.best_val_map = epoch, score
                    best_state = copy.deepcopy(module.state_dict())
                    epochs_without_gain = 0
                else:
                    epochs_without_gain += 1
            record["seconds"] = time.perf_counter() - t0
            result.history.append(record)
            postfix = {"loss": f"{record['loss']:.4f}"}
            if record["val_map"] is not None:
                postfix["val_map"] = f"{record['val_map']:.4f}"
            bar.set_postfix(postfix)
            if callback is not None and callback(dict(record)) is False:
                result.stopped_by_callback = True
                break
            if patience is not None and validate is not None and epochs_without_gain >= patience:
                result.stopped_early = True
                break
    finally:
        bar.close()
        module.eval()
    if validate is not None and restore_best and best_state is not None:
        module.load_state_dict(best_state)
    return result
