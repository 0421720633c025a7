"""Train or fine-tune from a Caffe solver file, like `caffe train`.

With --engine caffe (or auto where pycaffe and the `caffe` tool are installed) real Caffe runs
(`caffe train`); with --engine torch dynsal's engine reproduces Caffe's solver semantics and writes
Caffe's snapshots (`<prefix>_iter_<N>.caffemodel` + `.solverstate`), a JSON-lines log
(`<prefix>_log.jsonl`) and the resolved solver (`<prefix>_solver.resolved.prototxt`).
Ctrl-C / SIGTERM / SIGUSR1 write a snapshot and stop with exit status 130 / 143 / 138 (128 + the
signal; real `caffe train` exits 0 there, so a script cannot tell an interrupted model from a finished
one); SIGHUP snapshots and goes on. Under `srun` with several tasks each task is a data-parallel rank
(SLURM's variables give rank, world size and rendezvous; docs/cluster.md). A NaN/inf loss or
non-finite weights stop training (exit 1), naming the last snapshot whose weights and loss are
finite. Resuming truncates the log to the snapshot.

Examples:
  dynsal train prototxt/ssnet_solver.prototxt
  dynsal train solver.prototxt --weights salnet.caffemodel           # fine-tune: copy by layer name
  dynsal train solver.prototxt --resume snapshots/ssnet_iter_5000.solverstate
  dynsal train solver.prototxt --stage wide --level 2    # the train net's NetState, as caffe train's flags
  python scripts/train.py solver.prototxt --engine torch --device cuda
  dynsal train solver.prototxt --engine torch --gpu all      # one DDP process per GPU (batch × GPUs)
  torchrun --nproc_per_node 4 -m dynsal train solver.prototxt --engine torch --device cuda   # same, by hand
  srun -N 2 --ntasks-per-node 4 --gpus-per-task 1 dynsal train solver.prototxt --engine torch --resume latest
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from dynsal.caffe import io
from dynsal.caffe.schema import pb
from dynsal.engines import pick_engine
from dynsal.engines.pycaffe_probe import nvidia_gpu_present
from dynsal.errors import DynsalError
from dynsal.progress import write_line
from dynsal.training.snapshots import latest_snapshot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("solver", help="solver prototxt")
    parser.add_argument("--weights", help="caffemodel(s) to start from, comma-separated (copied by layer name)")
    parser.add_argument("--resume", help="a .solverstate to continue from (iteration, history, lr schedule), or "
                        "latest: the newest complete snapshot of the solver's snapshot_prefix (none: start at 0), "
                        "what a requeued cluster job passes")
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "caffe"),
                        help="caffe: real `caffe train` (where installed); torch: dynsal's solver; auto: caffe when "
                        "pycaffe and the caffe tool are installed, else torch")
    parser.add_argument("--device", default="auto", help="torch engine: auto (the GPU when torch sees one), cpu, cuda "
                        "or cuda:<i>; the caffe engine uses --gpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16", "fp16"),
                        help="torch engine arithmetic (fp32 is what parity with Caffe is measured in)")
    parser.add_argument("--compile", action="store_true", help="torch engine: run the nets torch.compile'd (cached in "
                        "$DYNSAL_COMPILE_CACHE or ~/.cache/dynsal/torch-compile; eager with a warning where it cannot)")
    parser.add_argument("--no-test-initialization", action="store_true",
                        help="skip the test pass before the first iteration (the solver's test_initialization: "
                        "false); it runs test_iter batches per test net and can take minutes")
    parser.add_argument("--gpu", help="GPU ids (0,1,...) or all: caffe engine as `caffe train --gpu`; torch engine "
                        "starts one DistributedDataParallel process per GPU (torchrun)")
    parser.add_argument("--max-iter", type=int, help="stop after this many iterations instead of the solver's max_iter "
                        "(the resolved solver is saved with it)")
    parser.add_argument("--level", type=int, default=0, help="the train net's NetState level; as `caffe train`, it "
                        "replaces the solver's train_state level (default 0)")
    parser.add_argument("--stage", default="", help="NetState stages added to the solver's train_state, "
                        "comma-separated (as `caffe train --stage`)")


def resolved_solver_path(solver_param) -> Path:
    return Path(f"{solver_param.snapshot_prefix}_solver.resolved.prototxt")


def apply_tool_state(solver_param, level: int, stages: str) -> None:
    """caffe.cpp's train(): train_state.level = --level (always, 0 by default), then every --stage
    (split at commas; "" gives one empty stage, as Caffe's) appended to train_state.stage."""
    solver_param.train_state.level = level
    solver_param.train_state.stage.extend(stages.split(","))


def run_caffe(args: argparse.Namespace, solver_param, resume: Optional[str]) -> int:
    """Real `caffe train` on the resolved solver (with --max-iter applied), its log passed through. Without
    --gpu, a solver's `solver_mode: GPU` (the zoo's solvers) trains on the CPU where no NVIDIA GPU is present,
    as --device auto does, saying so (Caffe would abort: "Cannot use GPU in CPU-only Caffe")."""
    caffe = shutil.which("caffe")
    if caffe is None:
        raise DynsalError("the caffe engine needs Caffe's `caffe` tool on PATH; use --engine torch")
    if not args.gpu and solver_param.solver_mode == pb.SolverParameter.GPU and not nvidia_gpu_present():
        solver_param.solver_mode = pb.SolverParameter.CPU  # caffe train would abort: "Cannot use GPU ..."
        write_line("dynsal train: the solver asks for the GPU (solver_mode: GPU) and there is none here: caffe "
                   "train runs on the CPU")
    io.write_text(solver_param, resolved_solver_path(solver_param))
    command = [caffe, "train", f"--solver={resolved_solver_path(solver_param)}"]
    command += [f"--weights={args.weights}"] if args.weights and not resume else []
    command += [f"--snapshot={resume}"] if resume else []
    command += [f"--gpu={args.gpu}"] if args.gpu else []
    command += [f"--level={args.level}", f"--stage={args.stage}"]
    return subprocess.call(command, stdout=sys.stdout, stderr=sys.stderr)


def launch_data_parallel(args: argparse.Namespace) -> int:
    """`--gpu ids|all` on the torch engine: rerun this command under torchrun, one process per GPU."""
    import torch

    ids = list(range(torch.cuda.device_count())) if args.gpu == "all" else [int(i) for i in args.gpu.split(",")]
    if not ids:
        raise DynsalError("--gpu all: this torch sees no CUDA GPU")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={len(ids)}",
               "-m", "dynsal", "train", args.solver, "--engine", "torch", "--device", "cuda",
               "--precision", args.precision]
    command += ["--weights", args.weights] if args.weights else []
    command += ["--resume", args.resume] if args.resume else []
    command += ["--quiet"] if args.quiet else []
    command += ["--compile"] if args.compile else []
    command += ["--level", str(args.level), "--stage", args.stage]
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


def run(args: argparse.Namespace) -> int:
    solver_param = io.read_solver(args.solver)
    if args.max_iter is not None:
        if args.max_iter < 1:
            raise DynsalError("--max-iter must be at least 1")
        solver_param.max_iter = args.max_iter
    if args.no_test_initialization:
        solver_param.test_initialization = False
    prefix = Path(solver_param.snapshot_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    if args.weights and args.resume not in (None, "latest"):
        raise DynsalError("give --weights or --resume, not both (as caffe train; --resume latest starts from "
                          "--weights while there is no snapshot)")
    resume = resume_from(args.resume, solver_param)
    engine = pick_engine(args.engine)
    if engine == "caffe" and shutil.which("caffe") is None and args.engine == "auto":
        engine = "torch"
    if engine == "caffe":
        if args.resume == "latest":
            print(latest_line(resume, solver_param))
        return run_caffe(args, solver_param, resume)  # caffe train applies --level / --stage itself
    apply_tool_state(solver_param, args.level, args.stage)
    io.write_text(solver_param, resolved_solver_path(solver_param))
    from dynsal.engines.torch import distributed

    if args.gpu and not distributed.launched_as_rank():
        return launch_data_parallel(args)
    from dynsal.engines.torch.net import resolve_device
    from dynsal.engines.torch.solver import TorchSolver

    device = distributed.join_process_group(str(resolve_device(args.device)))
    solver = TorchSolver(solver_param, Path(args.solver).resolve().parent, device=device,
                         precision=args.precision, progress=not args.quiet and distributed.rank() == 0,
                         compile=args.compile)
    if args.resume == "latest" and solver.rank == 0:
        print(latest_line(resume, solver_param))
    if args.weights and not resume:
        solver.load_weights(args.weights)
    try:
        snapshot = solver.solve(resume=resume)
    finally:
        distributed.leave_process_group()
    if solver.stopped_by is not None:
        name = signal.Signals(solver.stopped_by).name
        if solver.rank == 0:
            why = " (SLURM's warning before the time limit?)" if solver.stopped_by == signal.SIGUSR1 else ""
            print(f"stopped by {name}{why} at iteration {solver.iter}; last snapshot: {snapshot}; log: "
                  f"{solver.log_path}; continue with --resume {solver.snapshot_paths()[1]} (or --resume latest)")
        return 128 + solver.stopped_by
    if solver.rank == 0:
        print(f"finished at iteration {solver.iter}; last snapshot: {snapshot}; log: {solver.log_path}")
    return 0

