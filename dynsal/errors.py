"""The exceptions dynsal raises for bad user input, and the warning it gives where it carries on.

Each message is one line that names the file / layer / frame concerned and says what to do; the CLI
prints it (`dynsal COMMAND: error: …`) and exits non-zero. Library code warns with `warn` (Python's
warnings, category `DynsalWarning`), which the CLI prints as one line `dynsal: warning: …`.
"""
from __future__ import annotations

import warnings


class DynsalError(Exception):
    """Base class: a user-facing, one-line error."""


class FormatError(DynsalError):
    """A file is unreadable, truncated, or not in the format expected (prototxt, caffemodel, ...)."""


class NetDefinitionError(DynsalError):
    """A net definition is inconsistent: unknown bottom, duplicate top, bad parameter, unknown layer."""


class WeightsMismatchError(DynsalError):
    """Weights do not fit a net: missing layers, wrong blob counts or shapes."""


class ExportError(DynsalError):
    """A net cannot be exported as asked: a layer without an ONNX form, a shape fixed where --dynamic needs
    it free, a precision that would change a result."""


class OracleUnavailable(DynsalError):
    """The real-Caffe oracle chroot cannot be built or run here."""


class EvaluationError(DynsalError):
    """Saliency evaluation input is unusable: bad maps, unmatched prediction/ground-truth files."""


class DataError(DynsalError):
    """Dataset input is unusable: unreadable or empty video, bad gaze file, frame-count mismatch."""


class OutputError(DynsalError):
    """An output cannot be written safely: it would land on or inside an input, replace what dynsal did not
    create, another run holds its lock, or a write failed."""


class DynsalWarning(UserWarning):
    """dynsal carries on in a way the user should know of (a fallback engine, eager instead of compiled)."""


def warn(message: str) -> None:
    """Warn with `DynsalWarning`, attributed to the caller of the function that warns."""
    warnings.warn(message, DynsalWarning, stacklevel=3)
