"""Each CPU inference convolution on the algorithm measured fastest for its shape on this machine.

Candidates (all cross-correlation as Caffe, float32, differing from direct convolution by rounding,
≤ 1e-5 relative): `direct` (oneDNN, `F.conv2d`), `channels_last` (oneDNN on NHWC data), `fft<n>`
(tiled FFT with n×n transforms, `fftconv`; 2-D, stride 1, square kernel, any channel count) and
`winograd` (F(4×4, 3×3), `winograd`; 3×3 stride 1). Chosen the first time a shape runs, on
random data of the layer's shape: each candidate runs once to warm up (kernel transforms), then
`REPEATS` rounds time each remaining candidate once (a burst of other work slows all alike); the
minimum counts (the least disturbed), and after each round a candidate over `GIVE_UP` times the best
is dropped. The choice (with its times and the load average then) is cached on disk as JSON
(`cache_path()`), keyed by the CPU model, torch version and thread count, then by shape (batch,
channels, kernel, stride, pad, dilation, groups, input size, dtype); entries of another machine key
are ignored. A corrupt cache file gives a warning and is replaced; writes are atomic (a temporary
file renamed over it). Deleting the file measures again (say, after a measurement on a busy machine).

Override: $DYNSAL_CONV_ALGO = `direct`, `channels_last`, `fft`, `fft<n>`, `winograd` or `measure`
(the default) for every layer, and/or `layer=algorithm` items, comma-separated
(`DYNSAL_CONV_ALGO=direct,conv4=fft24`); `TorchNet.set_conv_algorithm`. A forced algorithm that
cannot run a layer's shape runs it directly. Training and backward always convolve directly.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

import torch
import torch.nn.functional as F

from dynsal.engines.torch import fftconv, winograd
from dynsal.errors import DynsalError, warn
from dynsal.progress import write_line

ENV_ALGO, ENV_CACHE = "DYNSAL_CONV_ALGO", "DYNSAL_CONV_CACHE"
REPEATS, GIVE_UP = 3, 2.0
CACHE_VERSION = 1
#: the largest kernel spectrum (bytes) an FFT candidate may keep per layer
SPECTRUM_LIMIT = 1 << 30
FIXED = ("direct", "channels_last", "fft", "winograd")


def cache_path() -> Path:
    """$DYNSAL_CONV_CACHE, else ~/.cache/dynsal/conv-algorithms.json."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "dynsal" / "conv-algorithms.json")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What a measured choice holds for: CPU model, torch version, torch's thread count."""
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def shape_key(x_shape, weight_shape, options: dict, dtype) -> str:
    """The layer shape a choice is made for."""
    return (f"x{tuple(x_shape)} w{tuple(weight_shape)} stride{options['stride']} pad{options['padding']} "
            f"dilation{options['dilation']} groups{options['groups']} {str(dtype).replace('torch.', '')}")


def check_algorithm(name: str) -> str:
    """`name` if it names an algorithm (or `measure`), else DynsalError saying which exist."""
    if name == "measure" or name in FIXED or (name.startswith("fft") and name[3:].isdigit() and int(name[3:]) > 1):
        return name
    raise DynsalError(f"unknown convolution algorithm {name!r} (${ENV_ALGO} or set_conv_algorithm); use measure, "
                      "direct, channels_last, fft, fft<n> (e.g. fft24) or winograd")


def forced_from_env(layer: str) -> Optional[str]:
    """The algorithm $DYNSAL_CONV_ALGO forces on `layer` (a `layer=` item wins), or None to measure."""
    chosen = None
    for item in filter(None, (part.strip() for part in os.environ.get(ENV_ALGO, "").split(","))):
        name, _, algorithm = item.rpartition("=")
        if not name or name == layer:
            chosen = check_algorithm(algorithm.strip())
            if name:
                break
    return None if chosen == "measure" else chosen


class Convolutions:
    """One 2-D convolution layer's algorithms: which run a shape, running them, their kernel transforms."""

    def __init__(self, weight_shape, options: dict):
        self.out_channels, self.in_channels, self.kh, self.kw = weight_shape
        self.options = options
        self.stride_1 = (all(s == 1 for s in options["stride"]) and all(d == 1 for d in options["dilation"])
                         and options["groups"] == 1)
        self.transforms: Dict[str, tuple] = {}  # algorithm -> (weight key, transformed kernels)

    @property
    def fft_possible(self) -> bool:
        return self.stride_1 and self.kh == self.kw > 1

    def candidates(self, x_shape) -> list:
        """The algorithms measured for input shape `x_shape` (N, C, H, W), `direct` first: FFT sizes
        2k ≤ n ≤ 5k whose tiles fit the output and whose kernel spectrum fits SPECTRUM_LIMIT."""
        names = ["direct", "channels_last"]
        if self.fft_possible:
            pad = self.options["padding"]
            longest = max(x_shape[2] + 2 * pad[0], x_shape[3] + 2 * pad[1]) - self.kh + 1
            spectrum_per_bin = 8 * self.out_channels * self.in_channels
            names += [f"fft{n}" for n in fftconv.FFT_SIZES if 2 * self.kh <= n <= 5 * self.kh
                      and n - self.kh + 1 <= longest and n * (n // 2 + 1) * spectrum_per_bin <= SPECTRUM_LIMIT]
        if self.stride_1 and self.kh == self.kw == winograd.KERNEL:
            names.append("winograd")
        return names

    def resolve(self, algorithm: str) -> str:
        """The algorithm that runs when `algorithm` is forced: `fft` is the FFT size of `fftconv.fft_size`;
        one that cannot run this layer's geometry becomes `direct`."""
        if algorithm == "fft":
            algorithm = f"fft{fftconv.fft_size(self.kh)}"
        if algorithm.startswith("fft"):
            return algorithm if self.fft_possible and int(algorithm[3:]) > self.kh else "direct"
        if algorithm == "winograd" and not (self.stride_1 and self.kh == self.kw == winograd.KERNEL):
            return "direct"
        return algorithm

    def run(self, algorithm: str, x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
        """Convolve with `algorithm` (one `resolve` or `candidates` gave for x's shape)."""
        if algorithm == "direct":
            return F.conv2d(x, weight, bias, **self.options)
        if algorithm == "channels_last":
            return F.conv2d(x.contiguous(memory_format=torch.channels_last),
                            self._transform(algorithm, weight), bias, **self.options)
        if algorithm == "winograd":
            return winograd.winograd_conv2d(x, self._transform(algorithm, weight), bias, self.options["padding"])
        n = int(algorithm[3:])
        return fftconv.fft_conv2d(x, self._transform(algorithm, weight), bias, self.kh, self.options["padding"], n)

    def keep_only(self, algorithms: Iterable[str]) -> None:
        """Drop the kernel transforms of other algorithms (FFT spectra take hundreds of MB)."""
        keep = set(algorithms)
        self.transforms = {name: value for name, value in self.transforms.items() if name in keep}

    def forget(self) -> None:
        """Drop every kernel transform."""
        self.transforms = {}

    def _transform(self, algorithm: str, weight: torch.Tensor) -> torch.Tensor:
        """The kernels as `algorithm` uses them, recomputed when the weight changes."""
        key = (weight._version, weight.data_ptr(), weight.device)
        cached = self.transforms.get(algorithm)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                w = weight.detach()
                if algorithm == "channels_last":
                    transformed = w.contiguous(memory_format=torch.channels_last)
                elif algorithm == "winograd":
                    transformed = winograd.kernel_transform(w)
                else:
                    transformed = fftconv.kernel_transform(w, int(algorithm[3:]))
            cached = self.transforms[algorithm] = (key, transformed)
        return cached[1]


def fastest(candidates: list, run: Callable[[str], object], timer: Callable[[], float] = time.perf_counter,
            repeats: int = REPEATS) -> tuple:
    """(the candidate with the least minimum time, {candidate: minimum seconds}): one warm-up run each,
    then `repeats` rounds in which each remaining candidate runs once, timed, so that a burst of other
    work on the machine slows all of them alike; after each round a candidate over GIVE_UP × the best
    minimum is dropped."""
    for name in candidates:
        run(name)
    seconds: Dict[str, float] = {}
    remaining = list(candidates)
    for _ in range(repeats):
        for name in remaining:
            start = timer()
            run(name)
            elapsed = timer() - start
            seconds[name] = min(seconds.get(name, elapsed), elapsed)
        best = min(seconds.values())
        remaining = [name for name in remaining if seconds[name] <= GIVE_UP * best]
    return min(seconds, key=seconds.get), seconds


class ChoiceCache:
    """The measured choices on disk (see the module docstring), read once per process."""

    def __init__(self, path: Path | None = None, machine: str | None = None):
        self.path = path or cache_path()
        self.machine = machine or machine_key()
        self._entries: Optional[dict] = None

    def get(self, shape: str) -> Optional[str]:
        """The cached algorithm for `shape` on this machine key, or None."""
        entry = self._load().get(self.machine, {}).get(shape)
        return entry.get("algorithm") if isinstance(entry, dict) else None

    def put(self, shape: str, algorithm: str, seconds: dict) -> None:
        """Record a choice: re-read the file, add the entry, write it atomically; a failed write warns."""
        self._entries = self._read(report=False)
        self._entries.setdefault(self.machine, {})[shape] = dict(algorithm=algorithm, seconds=seconds,
                                                                 load_average=os.getloadavg()[0])
        try:
            self._write(self._entries)
        except OSError as exc:
            warn(f"cannot write the convolution algorithm cache {self.path} ({exc}); the choice holds for this "
                 "run only")

    def _load(self) -> dict:
        if self._entries is None:
            self._entries = self._read(report=True)
        return self._entries

    def _read(self, report: bool) -> dict:
        """The file's entries; an unreadable or foreign file counts as empty (with a warning if `report`)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            problem = f"is unreadable ({exc})"
        else:
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("machines"),
                                                                                              dict):
                return {k: v for k, v in data["machines"].items() if isinstance(v, dict)}
            problem = f"is not one this dynsal writes (version {CACHE_VERSION})"
        if report:
            warn(f"the convolution algorithm cache {self.path} {problem}; its choices are measured again and the "
                 "file rewritten")
        return {}

    def _write(self, entries: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dict(version=CACHE_VERSION, machines=entries), indent=1, sort_keys=True)
        handle, temporary = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


_CACHE: Optional[ChoiceCache] = None


def shared_cache() -> ChoiceCache:
    """The process's ChoiceCache at `cache_path()` (a new one when the path or machine key changed)."""
    global _CACHE
    if _CACHE is None or _CACHE.path != cache_path() or _CACHE.machine != machine_key():
        _CACHE = ChoiceCache()
    return _CACHE


_ANNOUNCED = set()


def _announce_measuring(path: Path) -> None:
    """One line, once per process and cache, before the first measurement: the pause that follows (seconds to
    minutes on a busy machine) is this, and happens once per layer shape."""
    if path not in _ANNOUNCED:
        _ANNOUNCED.add(path)
        write_line(f"dynsal: measuring the fastest convolution algorithm for each new layer shape on this CPU "
                   f"(once; cached in {path}; {ENV_ALGO}=direct skips it)")


def choose(convolutions: Convolutions, x_shape, weight: torch.Tensor, bias, dtype,
           cache: ChoiceCache | None = None, timer: Callable[[], float] = time.perf_counter) -> str:
    """The algorithm for input shape `x_shape`: the cached choice, else measured on random data and cached."""
    cache = cache or shared_cache()
    shape = shape_key(x_shape, weight.shape, convolutions.options, dtype)
    candidates = convolutions.candidates(x_shape)
    algorithm = cache.get(shape)
    if algorithm in candidates:
        return algorithm
    _announce_measuring(cache.path)
    x = torch.randn(x_shape, generator=torch.Generator(weight.device).manual_seed(0), dtype=dtype,
                    device=weight.device)  # a generator of its own: the global random stream stays as it was
    algorithm, seconds = fastest(candidates, lambda name: convolutions.run(name, x, weight, bias), timer)
    convolutions.keep_only([algorithm])
    cache.put(shape, algorithm, seconds)
    return algorithm
