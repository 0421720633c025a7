"""Caffe's Solver on the torch engine: same iteration, update, test, display and snapshot semantics.

Per iteration (Solver::Step): maybe test → iter_size × (forward + backward, gradients accumulate)
→ loss / iter_size → smoothed loss (last `average_loss`) → display → ApplyUpdate: rate from the
lr_policy, global L2 gradient clipping (`clip_gradients`, on the accumulated gradients), then per
learnable blob: ÷ iter_size, + weight decay (L2: decay·w, L1: decay·sign(w); decay = weight_decay ·
decay_mult), the update rule with rate · lr_mult (`updates.py`), w ← w − diff → iter += 1 → snapshot
every `snapshot` iterations. After `max_iter`: a snapshot unless one was just written
(`snapshot_after_train`), and a final test when `max_iter % test_interval == 0`.

Data layers (HDF5Data, Data/LMDB, ImageData) read their sources like Caffe's layers
(`dynsal.data.caffe_sources`); test nets share the train net's blobs by layer name. Snapshots are
Caffe's files: `<prefix>_iter_<N>.caffemodel` + `.solverstate` (history blobs in Caffe's order), or
`.caffemodel.h5` + `.solverstate.h5` with `snapshot_format: HDF5` (`snapshot_diff` adds gradients),
readable by `caffe train --snapshot` and the other way round. SIGINT/SIGTERM/SIGUSR1: snapshot, then
stop; SIGHUP: snapshot and go on (data parallel: every rank acts on the signal any rank caught, after the
same iteration). After such a stop the solver keeps catching those three signals, so that a repeated one
(srun passes scancel's SIGTERM on to tasks SLURM signals itself) cannot kill a rank while it shuts down.
A non-finite loss, or non-finite weights at a snapshot, stops training and names the last good
snapshot: one whose weights were finite and whose own loss (the forward pass of the
iteration it was taken at) was finite too (`FiniteSnapshots`). Resuming truncates the JSON-lines log to
the snapshot's iteration, so a killed and resumed run's log has each iteration once.
Resuming also moves the data layers to where the interrupted run was (Caffe restarts them at the
first record), so a resumed run ends with the weights of an uninterrupted one.

Data parallel (under `torchrun`, DistributedDataParallel's process group): Caffe's multi-GPU
meaning — each rank runs the full batch on its share of the records (record-level interleave,
`ShardedSource`), gradients are summed over ranks and divided by their number before the update
(so n ranks with batch b = one process with batch n·b), only rank 0 tests, logs and snapshots.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from dynsal.caffe import io
from dynsal.caffe.blobs import array_to_blob, blob_to_array
from dynsal.caffe.graph import loss_weight
from dynsal.caffe.schema import pb
from dynsal.data.caffe_sources import ShardedSource
from dynsal.engines.torch.denormals import flush_denormals
from dynsal.engines.torch.net import TorchNet, TorchNetOptions
from dynsal.engines.torch.params import load_caffemodel
from dynsal.engines.torch.updates import HISTORY_BLOBS, RULES, check_solver_type
from dynsal.errors import DynsalError
from dynsal.files import with_path
from dynsal.progress import progress_bar
from dynsal.training.caffe_log import CaffeConsole
from dynsal.training.lr_policy import learning_rate
from dynsal.training.training_log import truncate_log

FLOAT32_MAX = float(np.finfo(np.float32).max)
#: snapshot, then stop (SIGUSR1: SLURM's warning before a job's time limit, `sbatch --signal=USR1@120`);
#: SIGHUP: snapshot and go on
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class LearnableBlob:
    """One learnable parameter as Caffe's solver sees it: the tensor, its multipliers, its history."""

    def __init__(self, layer: str, index: int, tensor: torch.Tensor, lr_mult: float, decay_mult: float):
        self.layer, self.index, self.tensor = layer, index, tensor
        self.lr_mult, self.decay_mult = lr_mult, decay_mult
        self.history: List[torch.Tensor] = []

    def gradient(self) -> torch.Tensor:
        grad = self.tensor.grad
        return grad.detach().clone() if grad is not None else torch.zeros_like(self.tensor)


def solver_net_path(text: str, field: str, solver_dir: Path) -> Path:
    """A net file named in a solver, resolved as Caffe does: relative to the working directory.

    Raises:
        DynsalError: the file is not there; the message says where it is (the solver's folder or a
            folder above it) when it is found there, so the user knows where to run from.
    """
    path = Path(text)
    if path.is_absolute() or path.exists():
        return path
    here = next((folder for folder in (solver_dir, *solver_dir.parents) if (folder / path).exists()), None)
    fix = f"run from {here}" if here is not None else "fix the path"
    raise DynsalError(f"the solver's {field} {text!r} is not in the working directory {Path.cwd()} (as in Caffe, a "
                      f"solver's paths are relative to where it runs): {fix}, or make the path absolute")


def _net_param(solver, solver_dir: Path, train: bool, index: int = 0):
    """The train net (net_param / net / train_net_param / train_net) or test net `index` definition."""
    def read(path: str, field: str):
        return io.read_net(solver_net_path(path, field, solver_dir))

    if train:
        if solver.HasField("train_net_param"):
            return solver.train_net_param
        if solver.HasField("train_net"):
            return read(solver.train_net, "train_net")
    else:
        if len(solver.test_net_param) > index:
            return solver.test_net_param[index]
        if len(solver.test_net) > index - len(solver.test_net_param):
            return read(solver.test_net[index - len(solver.test_net_param)], "test_net")
    if solver.HasField("net_param"):
        return solver.net_param
    if solver.HasField("net"):
        return read(solver.net, "net")
    raise DynsalError("the solver names no net (set net, net_param, train_net or train_net_param)")


def _test_net_count(solver) -> int:
    explicit = len(solver.test_net) + len(solver.test_net_param)
    if explicit:
        return explicit
    return len(solver.test_iter) if (solver.HasField("net") or solver.HasField("net_param")) else 0


class TorchSolver:
    """Train a Caffe net from a solver definition with the torch engine.

    Args:
        solver: an upgraded `pb.SolverParameter` (see `dynsal.caffe.io.read_solver`).
        solver_dir: the solver file's folder. Net paths resolve from the working directory, as in Caffe
            (so do data sources and snapshot_prefix); this folder only helps an error say where to run from.
        device, precision: as `dynsal.engines.load_net`.
        log_path: JSON-lines log (one record per iteration and per test); default
            `<snapshot_prefix>_log.jsonl`.
        progress: show a progress bar with ETA and Caffe's console lines (`dynsal.training.caffe_log`:
            `Iteration N (x iter/s, ...), loss = ...` every `display` iterations, test outputs,
            snapshots) on stderr, as `caffe train` prints them (rank 0 only).
        compile: run the train and test nets `torch.compile`d (`dynsal.engines.torch.compiled`).
    """

    def __init__(self, solver, solver_dir: Path = Path("."), device: str = "cpu", precision: str = "fp32",
                 log_path: Optional[Path] = None, progress: bool = False, compile: bool = False):
        self.solver, self.kind = solver, check_solver_type(solver)
        self.rule = RULES[self.kind]
        self.iter, self.current_step = 0, 0
        seed = solver.random_seed if solver.random_seed >= 0 else None
        if seed is not None:
            torch.manual_seed(seed)
        self.compile = compile
        self.train = self._make_net(_net_param(solver, solver_dir, True), "train", solver.train_state, seed, device,
                                    precision)
        count = _test_net_count(solver)
        if count and len(solver.test_iter) != count:
            raise DynsalError(f"the solver has {count} test nets but {len(solver.test_iter)} test_iter values")
        self.tests = [self._make_net(_net_param(solver, solver_dir, False, i), "test",
                                     solver.test_state[i] if len(solver.test_state) > i else None, seed, device,
                                     precision) for i in range(count)]
        self.rank, self.world = _distributed_rank_and_size()
        if self.rank != 0:
            self.tests = []  # as Caffe: only the root solver tests
        unsharded = [layer.layer_name for layer in self.train.module.layers
                     if hasattr(layer, "source") and not isinstance(layer.source, ShardedSource)]
        if self.world > 1 and unsharded:
            raise DynsalError(f"data-parallel training cannot shard the data of layer(s) {', '.join(unsharded)} "
                              "(ImageData); use Data (LMDB) or HDF5Data, or train in one process")
        for source in data_sources(self.train):
            source.shard(self.rank, self.world)
        for test in self.tests:
            self._share_weights(test)
        self.learnable = self._learnable_blobs()
        for blob in self.learnable:
            blob.history = [torch.zeros_like(blob.tensor) for _ in range(HISTORY_BLOBS[self.kind])]
        self.losses: deque = deque(maxlen=max(1, solver.average_loss))
        self.log_path = Path(log_path) if log_path else Path(f"{solver.snapshot_prefix}_log.jsonl")
        self.console = CaffeConsole(enabled=progress and self.rank == 0)
        self.snapshots = FiniteSnapshots()
        self._signal: Optional[int] = None
        self.stopped_by: Optional[int] = None  # the signal (SIGINT, SIGTERM) that stopped `solve`

    def _make_net(self, net_param, phase: str, extra_state, seed, device, precision):
        """Solver::InitTrainNet / InitTestNets: the NetState is the phase, then the net's own `state`,
        then the solver's `train_state` / `test_state` merged over it (level replaced, stages added)."""
        state = pb.NetState(phase=pb.TRAIN if phase == "train" else pb.TEST)
        state.MergeFrom(net_param.state)
        if extra_state is not None:
            state.MergeFrom(extra_state)
        return TorchNet(net_param, None, TorchNetOptions(phase="train" if state.phase == pb.TRAIN else "test",
                                                         device=device, precision=precision, seed=seed,
                                                         level=state.level, stages=tuple(state.stage),
                                                         compile=self.compile))

    def _share_weights(self, test) -> None:
        """Net::ShareTrainedLayersWith: a test layer uses the train layer's blobs of the same name."""
        train_layers = dict(self.train.module.named_layers())
        for name, layer in test.module.named_layers():
            if name in train_layers:
                source = train_layers[name]
                for i, blob in enumerate(source.blobs):
                    if tuple(blob.shape) != tuple(layer.blobs[i].shape):
                        raise DynsalError(f"test net layer {name!r} blob {i}: shape {tuple(layer.blobs[i].shape)} "
                                          f"differs from the train net's {tuple(blob.shape)}")
                    layer.blobs[i] = blob

    def _learnable_blobs(self) -> List[LearnableBlob]:
        """Owners of learnable blobs in layer order, with their lr_mult/decay_mult (default 1)."""
        seen, blobs = set(), []
        specs = {g.name: list(g.param.param) for g in self.train.graph.layers}
        for name, layer in self.train.module.named_layers():
            for i, tensor in enumerate(layer.blobs):
                if id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                spec = specs[name][i] if i < len(specs[name]) else pb.ParamSpec()
                blobs.append(LearnableBlob(name, i, tensor, spec.lr_mult, spec.decay_mult))
        return blobs

    # ----------------------------------------------------------------------------------- one iteration
    def _forward(self, net, gradients: bool):
        """One forward pass; the net's data layers read their next batch (dynsal.data.caffe_sources)."""
        if net.inputs:
            raise DynsalError(f"net {net.net_param.name!r} has Input layers ({', '.join(net.inputs)}); a solver "
                              "needs data layers (Data, HDF5Data, ImageData) that read the training set")
        return net.data_pass(gradients)  # the net's precision, fast path and flushed denormals

    def _forward_backward(self) -> tuple:
        blobs = self._forward(self.train, gradients=True)
        objective = blobs.objective()
        if objective is None:
            raise DynsalError("the train net has no loss (no layer with a loss weight); nothing to train")
        with flush_denormals(self.train.device):
            objective.backward()
        outputs = {name: blobs.data[name].detach().float().cpu().numpy() for name in self.train.outputs}
        return float(objective.detach()), outputs

    def _apply_update(self, display: bool) -> float:
        lr = learning_rate(self.solver, self.iter, self.current_step)
        self.current_step = lr.current_step
        if display:
            self.console.learning_rate(self.iter, lr.rate)
        grads = [blob.gradient() for blob in self.learnable]
        if self.world > 1:  # Caffe's multi-GPU: sum over solvers, then ÷ solver count
            for grad in grads:
                torch.distributed.all_reduce(grad)
                grad.div_(self.world)
        if self.solver.clip_gradients >= 0:
            norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
            if norm > self.solver.clip_gradients:
                factor = self.solver.clip_gradients / norm
                self.console.clipping(norm, self.solver.clip_gradients, factor)
                grads = [g * factor for g in grads]
        with torch.no_grad():
            for blob, grad in zip(self.learnable, grads):
                if self.solver.iter_size > 1:
                    grad = grad * (1.0 / self.solver.iter_size)
                decay = self.solver.weight_decay * blob.decay_mult
                if decay:
                    if self.solver.regularization_type == "L2":
                        grad = grad + decay * blob.tensor
                    elif self.solver.regularization_type == "L1":
                        grad = grad + decay * torch.sign(blob.tensor)
                    else:
                        raise DynsalError(f"unknown regularization_type {self.solver.regularization_type!r}")
                rate = lr.rate * blob.lr_mult
                if not abs(rate) <= FLOAT32_MAX:  # Caffe's float rate would be inf (or NaN): every weight too
                    raise DynsalError(f"iteration {self.iter}: the learning rate of layer {blob.layer!r} blob "
                                      f"{blob.index} is {rate:g} (rate {lr.rate:g} × lr_mult {blob.lr_mult:g}), beyond "
                                      f"float32; training stopped; {self.snapshots.good_text()} — lower base_lr")
                diff = self.rule(grad, blob.history, rate, self.solver, self.iter)
                blob.tensor.sub_(diff)
        return lr.rate

    def _test(self) -> List[dict]:
        """Solver::TestAll: each test net's outputs averaged over its test_iter passes, logged as Caffe's."""
        records = []
        for index, (net, iterations) in enumerate(zip(self.tests, self.solver.test_iter)):
            self.console.testing(self.iter, index)
            hint = " (--no-test-initialization skips this)" if self.iter == 0 else ""
            bar = progress_bar(iterations, f"dynsal train: test net #{index} at iteration {self.iter}{hint}",
                               "passes", enabled=self.console.enabled)
            sums: Dict[str, np.ndarray] = {}
            loss = 0.0
            with bar:
                for _ in range(iterations):
                    blobs = self._forward(net, gradients=False)
                    if self.solver.test_compute_loss:
                        objective = blobs.objective()
                        loss += 0.0 if objective is None else float(objective)
                    for name in net.outputs:
                        value = blobs.data[name].float().cpu().numpy()
                        sums[name] = sums.get(name, 0) + value
                    bar.update(1)
            means = {name: value / iterations for name, value in sums.items()}
            if self.solver.test_compute_loss:
                self.console.test_loss(loss / iterations)
            self._log_outputs(self.console.test_output, net, means)
            records.append({"iteration": self.iter, "phase": "test", "test_net": index, "loss": None, "lr": None,
                            "outputs": {name: _jsonable(value) for name, value in means.items()}})
        return records

    def _log_outputs(self, write, net, outputs: Dict[str, np.ndarray]) -> None:
        """Caffe's `Train/Test net output #k` lines: one per value of each output blob, numbered across blobs."""
        weights = output_loss_weights(net)
        values = [(name, value) for name in net.outputs for value in np.ravel(outputs[name])]
        for k, (name, value) in enumerate(values):
            write(k, name, float(value), weights[name])

    # -------------------------------------------------------------------------------------- the loop
    def solve(self, resume: Optional[str] = None) -> Optional[Path]:
        """Train until max_iter (or a stop signal: `stopped_by` is then set); returns the last caffemodel
        snapshot written.

        Raises:
            DynsalError: a non-finite loss or non-finite weights (naming the last good snapshot).
        """
        self.console.solving(self.train.net_param.name, self.solver.lr_policy)
        if resume:
            self.console.restoring(resume)
            self.restore(resume)
            truncate_log(self.log_path, self.iter)
        if self.world > 1:
            with torch.no_grad():
                for blob in self.learnable:
                    torch.distributed.broadcast(blob.tensor, 0)
        last_snapshot = None
        handlers = self._install_signals()
        bar = progress_bar(self.solver.max_iter, "dynsal train", "iterations", initial=self.iter,
                           enabled=self.console.enabled, leave=True)
        start = time.time()
        timer, last_display = start, self.iter  # Caffe's iteration_timer_ and iterations_last_
        try:
            with open(self.log_path if self.rank == 0 else os.devnull, "ab", buffering=0) as log:
                while self.iter < self.solver.max_iter:
                    self._maybe_test(log)
                    for blob in self.learnable:
                        blob.tensor.grad = None
                    loss, outputs = 0.0, {}
                    for _ in range(self.solver.iter_size):
                        step_loss, outputs = self._forward_backward()
                        loss += step_loss
                    loss /= self.solver.iter_size
                    self.snapshots.loss(self.iter, loss)
                    self.losses.append(loss)
                    display = bool(self.solver.display) and self.iter % self.solver.display == 0
                    if display:
                        lapse = time.time() - timer
                        self.console.display(self.iter, (self.iter - last_display) / (lapse or 1), lapse,
                                             self.solver.display, float(np.mean(self.losses)))
                        self._log_outputs(self.console.train_output, self.train, outputs)
                        timer, last_display = time.time(), self.iter
                    rate = self._apply_update(display)
                    record = {"iteration": self.iter, "phase": "train", "loss": float(np.mean(self.losses)),
                              "raw_loss": loss, "lr": rate, "outputs": {k: _jsonable(v) for k, v in outputs.items()},
                              "seconds": round(time.time() - start, 4)}
                    self._append(log, record)
                    self.iter += 1
                    bar.set_postfix_str(f"loss={record['loss']:.4g}, lr={rate:.3g}", refresh=False)
                    bar.update(1)
                    if self.solver.snapshot and self.iter % self.solver.snapshot == 0:
                        last_snapshot = self.snapshot()
                    caught = self._agreed_signal()
                    if caught == signal.SIGHUP:
                        last_snapshot, self._signal = self.snapshot(), None
                    if caught in STOP_SIGNALS:
                        self.stopped_by = caught
                        snapshot = self.snapshot()
                        self.console.done(stopped_early=True)
                        return snapshot
                if self.solver.snapshot_after_train and (not self.solver.snapshot
                                                         or self.iter % self.solver.snapshot):
                    last_snapshot = self.snapshot()
                self._final_display()
                if self.solver.test_interval and self.iter % self.solver.test_interval == 0:
                    self._write_tests(log)
                self.console.done(stopped_early=False)
        finally:
            bar.close()
            for sig, handler in handlers.items():
                if self.stopped_by is None or sig == signal.SIGHUP:
                    signal.signal(sig, handler)
        return last_snapshot

    def _final_display(self) -> None:
        """Solver::Solve after the last iteration: when `display` divides max_iter, one more forward
        pass of the train net and `Iteration N, loss = ...` (only printed, so only run when shown)."""
        if not (self.console.enabled and self.solver.display and self.iter % self.solver.display == 0):
            return
        objective = self._forward(self.train, gradients=False).objective()
        if objective is not None:
            self.losses.append(float(objective))
            self.console.final_loss(self.iter, float(np.mean(self.losses)))

    def _append(self, log, record: dict) -> None:
        """One JSON line to the (unbuffered) training log; a write error (full disk) names the log."""
        try:
            log.write((json.dumps(record) + "\n").encode())
        except OSError as exc:
            raise with_path(exc, self.log_path) from None

    def _maybe_test(self, log) -> None:
        interval = self.solver.test_interval
        if self.tests and interval and self.iter % interval == 0 and (self.iter > 0 or self.solver.test_initialization):
            self._write_tests(log)

    def _write_tests(self, log) -> None:
        for record in self._test():
            self._append(log, record)

    def _agreed_signal(self) -> Optional[int]:
        """The signal every rank acts on after this iteration: the highest caught by any rank (so a SIGTERM
        that reached the ranks at different iterations stops them all at the same one, snapshotted once)."""
        if self.world == 1:
            return self._signal
        flag = torch.tensor([self._signal or 0], dtype=torch.int64, device=self.learnable[0].tensor.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag) or None

    def _install_signals(self) -> dict:
        def caught(signum, frame):
            self._signal = signum

        handlers = {}
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            try:
                handlers[sig] = signal.signal(sig, caught)
            except ValueError:  # not the main thread: signals stay with the caller
                pass
        return handlers

    # ------------------------------------------------------------------------------------ snapshots
    @property
    def hdf5_snapshots(self) -> bool:
        return self.solver.snapshot_format == pb.SolverParameter.HDF5

    def snapshot_paths(self) -> tuple:
        prefix, suffix = self.solver.snapshot_prefix, ".h5" if self.hdf5_snapshots else ""
        return (Path(f"{prefix}_iter_{self.iter}.caffemodel{suffix}"),
                Path(f"{prefix}_iter_{self.iter}.solverstate{suffix}"))

    def snapshot(self) -> Path:
        """Write `<prefix>_iter_<N>.caffemodel` and `.solverstate` in Caffe's binary formats, or
        `.caffemodel.h5` and `.solverstate.h5` with `snapshot_format: HDF5` (`dynsal.caffe.hdf5`);
        `snapshot_diff` adds the gradients in either format."""
        model_path, state_path = self.snapshot_paths()
        if self.rank != 0:  # snapshots are written once, by rank 0
            return model_path
        self._check_finite_weights(model_path)
        self.console.snapshot(model_path, state_path, self.hdf5_snapshots)
        model_path.parent.mkdir(parents=True, exist_ok=True)
        io.write_caffemodel(self.train.net_param, self.train.params(), model_path, phase="TRAIN",
                            diffs=self.train.param_diffs() if self.solver.snapshot_diff else None)
        state = pb.SolverState(iter=self.iter, learned_net=str(model_path), current_step=self.current_step)
        for position in range(HISTORY_BLOBS[self.kind]):
            for blob in self.learnable:
                array_to_blob(blob.history[position].detach().cpu().numpy(), state.history.add())
        io.write_solverstate(state, state_path)
        self.snapshots.written(self.iter, model_path)
        return model_path

    def _check_finite_weights(self, model_path: Path) -> None:
        """Refuse to snapshot weights holding NaN or ±inf (naming the layer and the last good snapshot)."""
        for blob in self.learnable:
            bad = int((~torch.isfinite(blob.tensor)).sum())
            if bad:
                raise DynsalError(f"iteration {self.iter}: {bad} values of layer {blob.layer!r} blob {blob.index} are "
                                  f"not finite; training stopped without writing {model_path}; "
                                  f"{self.snapshots.good_text()} — lower base_lr or check the data")

    def restore(self, state_path: str) -> None:
        """Solver::Restore from a .solverstate (binary, or HDF5 when it ends in .h5): iteration, lr
        schedule step, history, weights."""
        state = io.read_solverstate(state_path)
        expected = HISTORY_BLOBS[self.kind] * len(self.learnable)
        if len(state.history) != expected:
            raise DynsalError(f"{state_path}: {len(state.history)} history blobs, a {self.kind} solver for this net "
                              f"needs {expected} (another net or solver type?)")
        if state.learned_net:
            model = Path(state.learned_net)
            if not model.exists():
                model = Path(state_path).parent / model.name
            self.load_weights(str(model))
            self.snapshots.written(state.iter, model)
        with torch.no_grad():
            for i, blob_proto in enumerate(state.history):
                blob = self.learnable[i % len(self.learnable)]
                values = torch.from_numpy(blob_to_array(blob_proto).astype(np.float32))
                blob.history[i // len(self.learnable)].copy_(values.reshape(blob.tensor.shape))
        self.iter, self.current_step = state.iter, state.current_step
        for source in data_sources(self.train):  # same data position as the interrupted run (Caffe restarts
            source.skip_batches(self.iter * self.solver.iter_size)  # at the first record)

    def load_weights(self, paths: str) -> None:
        """`caffe train --weights a.caffemodel[,b.caffemodel]`: copy blobs by layer name, in order."""
        for path in paths.split(","):
            load_caffemodel(self.train.module, io.read_net(path), allow_missing=True)


class FiniteSnapshots:
    """Which snapshot can be named as the last good one: its weights were finite (checked before writing)
    and the loss they gave — the forward pass of the iteration it was taken at — was finite too."""

    def __init__(self):
        self.good: Optional[Path] = None
        self.pending: Optional[tuple] = None  # (iteration, path) of a snapshot whose loss is not known yet

    def written(self, iteration: int, path: Path) -> None:
        self.pending = (iteration, Path(path))

    def good_text(self) -> str:
        if self.good is None:
            return "no snapshot with finite weights and loss was written"
        return f"the last snapshot with finite weights and loss is {self.good}"

    def loss(self, iteration: int, loss: float) -> None:
        """Record iteration `iteration`'s loss: confirms the snapshot taken there, or stops training.

        Raises:
            DynsalError: the loss is NaN or ±inf (naming the last good snapshot, and the one that gave it).
        """
        if math.isfinite(loss):
            if self.pending is not None and self.pending[0] == iteration:
                self.good, self.pending = self.pending[1], None
            return
        culprit = ""
        if self.pending is not None and self.pending[0] == iteration:
            culprit = f"; {self.pending[1]} gives this loss (do not use it)"
        raise DynsalError(f"iteration {iteration}: the loss is {loss}; training stopped; {self.good_text()}{culprit} "
                          "— lower base_lr or check the data")


def output_loss_weights(net) -> Dict[str, float]:
    """{output blob: its loss weight} (Net::blob_loss_weights_: the last layer writing a blob sets it)."""
    weights: Dict[str, float] = {}
    for layer in net.graph.layers:
        for index, top in enumerate(layer.param.top):
            weights[top] = loss_weight(layer.param, index)
    return {name: weights.get(name, 0.0) for name in net.outputs}


def data_sources(net) -> list:
    """The sharded data sources (Data, HDF5Data) of a TorchNet's data layers."""
    return [layer.source for layer in net.module.layers if isinstance(getattr(layer, "source", None), ShardedSource)]


def _distributed_rank_and_size() -> tuple:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _jsonable(value):
    array = np.asarray(value, np.float64)
    return float(array) if array.ndim == 0 else array.ravel().tolist()
