"""The `dynsal` command: one subcommand per job, each in its own module under `dynsal.commands`.

Every subcommand module defines `add_arguments(parser)` and `run(args) -> int`; `main(argv=None)`
returns the exit status so tests call it directly. A `DynsalError`, and any `OSError` (permission,
full disk, missing file: `os_error_line`), becomes one line on stderr and exit status 1; Ctrl-C
exits 130.
"""
from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import sys
import warnings
from typing import Sequence

from dynsal import __version__
from dynsal.errors import DynsalError, DynsalWarning

#: optional packages -> how to install them (a job that needs one says so in one line)
INSTALL = {
    "torch": "pip install torch (CPU; for a GPU pick the build for your CUDA at pytorch.org/get-started), or "
             "pip install \"dynsal[torch]\"",
    "lmdb": "pip install \"dynsal[data]\"",
    "h5py": "pip install \"dynsal[data]\"",
    "scipy": "pip install \"dynsal[eval]\"",
    "matplotlib": "pip install \"dynsal[plot]\"",
    "torchvision": "pip install \"dynsal[raft]\"",
    "cv2": "pip install opencv-python-headless",
    "caffe": "install pycaffe (e.g. Debian's python3-caffe, or the docker/ images), or use --engine torch",
}

#: subcommand name -> (module under dynsal.commands, one-line help)
COMMANDS = {
    "predict": ("predict", "saliency maps (PNG, npz, overlay MP4) for videos, frame folders and images"),
    "info": ("info", "describe a prototxt, caffemodel, solver, solverstate or mean file (and check a pair)"),
    "zoo": ("zoo", "list the networks or write their prototxt/solver files"),
    "weights": ("weights", "list, download (resumable) and verify published weights"),
    "train": ("train", "train or fine-tune from a Caffe solver file (caffe train semantics)"),
    "init-weights": ("init_weights", "initialise a two-stream net from SSNet and TSNet caffemodels"),
    "plot-log": ("plot_log", "plot loss / learning-rate curves of dynsal or Caffe training logs to a PNG"),
    "eval": ("eval", "score predicted saliency maps against fixations and density maps (AUC, NSS, CC, ...)"),
    "flow": ("flow", "compute optical flow of videos: flow images (PNG) and Middlebury .flo files"),
    "make-lmdb": ("make_lmdb", "build aligned frames/flows/maps LMDBs from videos and gaze (train_val_lmdb nets)"),
    "make-hdf5": ("make_hdf5", "build HDF5 training files (data1, data1_b, label) from videos and gaze"),
    "export": ("export", "export a Caffe net to ONNX or TorchScript with Caffe's semantics"),
}


def _known_words(parser: argparse.ArgumentParser) -> list:
    """Every option string and subcommand name of a parser and its subparsers."""
    words = []
    for action in parser._actions:
        words += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words += [name] + _known_words(sub)
    return words


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for mistyped options and subcommands."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        words = [w for w in message.replace(",", " ").split() if w.startswith("-") or w.startswith("'")]
        choices = _known_words(self)
        hints = []
        for word in words:
            close = difflib.get_close_matches(word.strip("'"), choices, n=1)
            if close:
                hints.append(close[0])
        if hints:
            message += f" (did you mean {hints[0]}?)"
        super().error(message)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written, and every option's default in its help (unless it already says)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if text == argparse.SUPPRESS or "default" in text or not action.option_strings:
            return text
        if action.default not in (None, False, [], argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `dynsal` parser; only `command`'s module is imported (each command's own dependencies load
    only when it runs, so e.g. `dynsal info` works where the video libraries are missing)."""
    parser = _Parser(prog="dynsal", description="Spatio-temporal saliency networks on Caffe's files.")
    parser.add_argument("--version", action="version", version=f"dynsal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"dynsal.commands.{module_name}")
        sub_parser = sub.add_parser(name, help=help_text, description=module.__doc__,
                                    formatter_class=_HelpFormatter)
        module.add_arguments(sub_parser)
        sub_parser.add_argument("-q", "--quiet", "--no-progress", dest="quiet", action="store_true",
                                help="no progress bars or progress lines on stderr (results and errors still print)")
        sub_parser.set_defaults(_run=module.run)
    return parser


#: errno -> what to do about it, after the path and the system's text
_OS_ERROR_HINTS = {
    errno.ENOSPC: "free some space and run the same command again (finished work is kept)",
    errno.EDQUOT: "free some space and run the same command again (finished work is kept)",
    errno.EACCES: "choose a folder you can write to, or change its permissions",
    errno.EPERM: "choose a folder you can write to, or change its permissions",
    errno.EROFS: "choose another folder",
    errno.ENOENT: "check the path",
}


def os_error_line(exc: OSError) -> str:
    """`PATH: errno text; what to do` for an OSError (the path(s) when the error names them)."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    text = " ".join((exc.strerror or str(exc)).split())
    hint = _OS_ERROR_HINTS.get(exc.errno)
    return f"{' -> '.join(paths) + ': ' if paths else ''}{text}{'; ' + hint if hint else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run `dynsal` with `argv` (default: sys.argv[1:]); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
    except ModuleNotFoundError as exc:
        return _missing_module(command, exc)
    args = parser.parse_args(argv)
    args.command_line = ["dynsal"] + argv  # as given, for the records that name the command (eval's reports)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", DynsalWarning)
            warnings.showwarning = _warning_line
            status = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return status
    except DynsalError as exc:
        print(f"dynsal {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        return _missing_module(args.command, exc)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except OSError as exc:
        print(f"dynsal {args.command}: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dynsal {args.command}: interrupted", file=sys.stderr)
        return 130


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for a command: a DynsalWarning is one line `dynsal: warning: …`; other warnings
    (from libraries) keep Python's format."""
    if issubclass(category, DynsalWarning):
        print(f"dynsal: warning: {message}", file=sys.stderr if file is None else file)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _missing_module(command: str | None, exc: ModuleNotFoundError) -> int:
    """One line saying which optional package a command needs and how to install it (exit status 1);
    other missing modules are bugs and keep their traceback."""
    package = (exc.name or "").split(".")[0]
    if package not in INSTALL:
        raise exc
    print(f"dynsal {command}: error: this needs {package}, which is not installed here: {INSTALL[package]}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
