"""Training from a Caffe solver file, like `caffe train`: `dynsal.train(solver, TrainOptions(...))`.

The engine: real `caffe train` (engine caffe, or auto where pycaffe and the `caffe` tool are installed)
on the resolved solver, its log passed through; else dynsal's torch solver, in this process, as one
data-parallel rank (torchrun's or SLURM's variables, `dynsal.engines.torch.distributed`), or — with
`gpu` on the torch engine and no launcher around — started again under torchrun, one process per GPU.
The resolved solver (`--max-iter`, `--level` / `--stage` applied) is saved as
`<snapshot_prefix>_solver.resolved.prototxt`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from dynsal.caffe import io
from dynsal.caffe.schema import pb
from dynsal.engines import pick_engine
from dynsal.engines.pycaffe_probe import nvidia_gpu_present
from dynsal.errors import DynsalError, warn
from dynsal.training.snapshots import latest_snapshot


@dataclass(frozen=True)
class TrainOptions:
    """What `dynsal train` takes besides the solver (its options of the same names).

    Attributes:
        weights: caffemodel(s) to start from, comma-separated (copied by layer name).
        resume: a .solverstate to continue from, or "latest": the newest complete snapshot of the solver's
            snapshot_prefix (none yet: a fresh start, from `weights` if given).
        engine: "auto", "torch" or "caffe".
        device, precision, compile: the torch engine's device ("auto", "cpu", "cuda", "cuda:<i>"), arithmetic
            and torch.compile.
        skip_test_initialization: no test pass before the first iteration (the solver's test_initialization).
        gpu: GPU ids ("0,1") or "all": `caffe train --gpu`, or one torch process per GPU (torchrun).
        max_iter: stop after this many iterations instead of the solver's max_iter.
        level, stage: the train net's NetState level and comma-separated stages (as `caffe train`).
        progress: a progress bar and Caffe's console lines (torch engine, rank 0).
    """

    weights: Optional[str] = None
    resume: Optional[str] = None
    engine: str = "auto"
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    skip_test_initialization: bool = False
    gpu: Optional[str] = None
    max_iter: Optional[int] = None
    level: int = 0
    stage: str = ""
    progress: bool = True


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended.

    Attributes:
        status: the exit status (0 finished; `caffe train`'s or torchrun's own; 128 + the signal that stopped
            the torch solver).
        rank: this process's data-parallel rank (0 alone); None where another program trained (caffe, torchrun).
        iteration, snapshot, log: the torch solver's last iteration, last snapshot and log file.
        stopped_by: the signal that stopped it, or None.
        resume_with: the solverstate to continue from after a stop.
    """

    status: int
    rank: Optional[int] = None
    iteration: int = 0
    snapshot: Optional[str] = None
    log: Optional[str] = None
    stopped_by: Optional[int] = None
    resume_with: Optional[str] = None


def resolved_solver_path(solver_param) -> Path:
    return Path(f"{solver_param.snapshot_prefix}_solver.resolved.prototxt")


def apply_tool_state(solver_param, level: int, stages: str) -> None:
    """caffe.cpp's train(): train_state.level = --level (always, 0 by default), then every --stage
    (split at commas; "" gives one empty stage, as Caffe's) appended to train_state.stage."""
    solver_param.train_state.level = level
    solver_param.train_state.stage.extend(stages.split(","))


def run_caffe(solver_param, options: TrainOptions, resume: Optional[str]) -> int:
    """Real `caffe train` on the resolved solver (with max_iter applied), its log passed through. Without
    `gpu`, a solver's `solver_mode: GPU` (the zoo's solvers) trains on the CPU where no NVIDIA GPU is present,
    as device auto does, with a `DynsalWarning` (Caffe would abort: "Cannot use GPU in CPU-only Caffe")."""
    caffe = shutil.which("caffe")
    if caffe is None:
        raise DynsalError("the caffe engine needs Caffe's `caffe` tool on PATH; use --engine torch")
    if not options.gpu and solver_param.solver_mode == pb.SolverParameter.GPU and not nvidia_gpu_present():
        solver_param.solver_mode = pb.SolverParameter.CPU  # caffe train would abort: "Cannot use GPU ..."
        warn("the solver asks for the GPU (solver_mode: GPU) and there is none here: caffe train runs on the CPU")
    io.write_text(solver_param, resolved_solver_path(solver_param))
    command = [caffe, "train", f"--solver={resolved_solver_path(solver_param)}"]
    command += [f"--weights={options.weights}"] if options.weights and not resume else []
    command += [f"--snapshot={resume}"] if resume else []
    command += [f"--gpu={options.gpu}"] if options.gpu else []
    command += [f"--level={options.level}", f"--stage={options.stage}"]
    return subprocess.call(command, stdout=sys.stdout, stderr=sys.stderr)


def launch_data_parallel(solver: str, options: TrainOptions, gpus: int) -> int:
    """`gpu` on the torch engine: this training again under torchrun, one process per GPU (`dynsal train`
    with the same options; CUDA_VISIBLE_DEVICES names the GPUs)."""
    ids = list(range(gpus)) if options.gpu == "all" else [int(i) for i in options.gpu.split(",")]
    if not ids:
        raise DynsalError("--gpu all: this torch sees no CUDA GPU")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={len(ids)}",
               "-m", "dynsal", "train", solver, "--engine", "torch", "--device", "cuda",
               "--precision", options.precision]
    command += ["--weights", options.weights] if options.weights else []
    command += ["--resume", options.resume] if options.resume else []
    command += ["--quiet"] if not options.progress else []
    command += ["--compile"] if options.compile else []
    command += ["--level", str(options.level), "--stage", options.stage]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(str(i) for i in ids))
    return subprocess.call(command, env=env)


def resume_from(resume: Optional[str], solver_param) -> Optional[str]:
    """--resume: a solverstate, or `latest`: the newest complete snapshot of the solver's prefix (None
    when there is none yet: a fresh start, from --weights if given)."""
    if resume != "latest":
        return resume
    state = latest_snapshot(solver_param.snapshot_prefix)
    return str(state) if state else None


def latest_line(resume: Optional[str], solver_param) -> str:
    if resume:
        return f"--resume latest: {resume}"
    return f"--resume latest: no snapshot {solver_param.snapshot_prefix}_iter_*.solverstate yet; starting afresh"


def train(solver: str, options: TrainOptions = TrainOptions(), say: Callable[[str], None] = print) -> TrainResult:
    """Train from a Caffe solver file until its max_iter, or until a signal stops the torch solver.

    Args:
        solver: the solver prototxt.
        options: `TrainOptions`.
        say: where the line saying which snapshot `resume="latest"` chose goes, before training starts.

    Returns:
        How it ended (`TrainResult`).

    Raises:
        DynsalError: bad options (weights with a resume, max_iter < 1, no caffe tool for engine caffe), or a
            bad solver or net file (named).
    """
    solver_param = io.read_solver(solver)
    if options.max_iter is not None:
        if options.max_iter < 1:
            raise DynsalError("--max-iter must be at least 1")
        solver_param.max_iter = options.max_iter
    if options.skip_test_initialization:
        solver_param.test_initialization = False
    Path(solver_param.snapshot_prefix).parent.mkdir(parents=True, exist_ok=True)
    if options.weights and options.resume not in (None, "latest"):
        raise DynsalError("give --weights or --resume, not both (as caffe train; --resume latest starts from "
                          "--weights while there is no snapshot)")
    resume = resume_from(options.resume, solver_param)
    engine = pick_engine(options.engine)
    if engine == "caffe" and shutil.which("caffe") is None and options.engine == "auto":
        engine = "torch"
    if engine == "caffe":
        if options.resume == "latest":
            say(latest_line(resume, solver_param))
        return TrainResult(run_caffe(solver_param, options, resume))  # caffe train applies level / stage itself
    apply_tool_state(solver_param, options.level, options.stage)
    io.write_text(solver_param, resolved_solver_path(solver_param))
    return _train_torch(solver, solver_param, options, resume, say)


def _train_torch(solver: str, solver_param, options: TrainOptions, resume: Optional[str],
                 say: Callable[[str], None]) -> TrainResult:
    """The torch engine's part of `train` (torch imported only here: `import dynsal` stays light)."""
    import torch

    from dynsal.engines.torch import distributed
    from dynsal.engines.torch.net import resolve_device
    from dynsal.engines.torch.solver import TorchSolver

    if options.gpu and not distributed.launched_as_rank():
        return TrainResult(launch_data_parallel(solver, options, torch.cuda.device_count()))
    device = distributed.join_process_group(str(resolve_device(options.device)))
    trainer = TorchSolver(solver_param, Path(solver).resolve().parent, device=device, precision=options.precision,
                          progress=options.progress and distributed.rank() == 0, compile=options.compile)
    if options.resume == "latest" and trainer.rank == 0:
        say(latest_line(resume, solver_param))
    if options.weights and not resume:
        trainer.load_weights(options.weights)
    try:
        snapshot = trainer.solve(resume=resume)
    finally:
        distributed.leave_process_group()
    stopped = trainer.stopped_by
    return TrainResult(0 if stopped is None else 128 + stopped, trainer.rank, trainer.iter,
                       None if snapshot is None else str(snapshot), str(trainer.log_path), stopped,
                       str(trainer.snapshot_paths()[1]) if stopped is not None else None)
