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
import signal

from dynsal.trainer import TrainOptions, train


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


def run(args: argparse.Namespace) -> int:
    result = train(args.solver, TrainOptions(
        weights=args.weights, resume=args.resume, engine=args.engine, device=args.device, precision=args.precision,
        compile=args.compile, skip_test_initialization=args.no_test_initialization, gpu=args.gpu,
        max_iter=args.max_iter, level=args.level, stage=args.stage, progress=not args.quiet))
    if result.rank != 0:  # caffe train or torchrun trained (and printed), or another rank
        return result.status
    if result.stopped_by is not None:
        name = signal.Signals(result.stopped_by).name
        why = " (SLURM's warning before the time limit?)" if result.stopped_by == signal.SIGUSR1 else ""
        print(f"stopped by {name}{why} at iteration {result.iteration}; last snapshot: {result.snapshot}; log: "
              f"{result.log}; continue with --resume {result.resume_with} (or --resume latest)")
    else:
        print(f"finished at iteration {result.iteration}; last snapshot: {result.snapshot}; log: {result.log}")
    return result.status
