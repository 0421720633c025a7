r"""`--latex`: the dataset scores as a booktabs table for a paper (`\usepackage{booktabs}`, then `\input{FILE}`).

Metrics in DHF1K's order (AUC-J, SIM, sAUC, CC, NSS, then AUC-B, KLD, IG), three decimals, the best
value per column in bold (ties: all of them), ↑/↓ in the header, one block per averaging convention,
and a caption naming the dataset and the conventions; it needs no package but booktabs.
"""
from __future__ import annotations

from typing import List

from dynsal.evaluate.reports.common import best_models, dataset_name, write_text
from dynsal.evaluate.result import CONVENTIONS, DHF1K_ORDER, LABELS, LOWER_IS_BETTER, EvaluationResult

DIGITS = 3
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped."""
    return "".join(_SPECIAL.get(c, c) for c in text)


def _number(value: float) -> str:
    """`value` with DIGITS decimals and a real minus sign (a value that rounds to zero is 0.000)."""
    value = round(value, DIGITS) + 0.0  # + 0.0: -0.0 becomes 0.0
    text = f"{abs(value):.{DIGITS}f}"
    return "$-$" + text if value < 0 else text


def _caption(result: EvaluationResult) -> str:
    s = result.settings
    baselines = [m for m in result.models if m in s["baselines"]]
    parts = [
        f"Saliency scores on {escape(dataset_name(result))} ({s['videos']} videos, {s['frames']} frames).",
        "Top: mean over videos of each video's mean over its frames; bottom: mean over all frames "
        "(longer videos weigh more).",
        r"$\uparrow$: higher is better, $\downarrow$: lower is better; best per column in bold.",
    ]
    if "sauc" in result.metrics:
        pool = "other videos" if s["sauc_pool"] == "other-videos" else "other frames"
        parts.append(f"sAUC negatives: the fixations of {s['sauc_negatives']} frames of {pool}.")
    if "ig" in result.metrics:
        parts.append("IG against the centre-bias map.")
    if baselines:
        parts.append(f"Baselines: {', '.join(baselines)}.")
    parts.append(f"Seed {s['seed']}; dynsal {escape(str(s['dynsal_version']))}.")
    return " ".join(parts)


def format_latex(result: EvaluationResult) -> str:
    """The table environment as text."""
    metrics = [m for m in DHF1K_ORDER if m in result.metrics]
    header = ["Model"] + [LABELS[m] + (r" $\downarrow$" if m in LOWER_IS_BETTER else r" $\uparrow$")
                          for m in metrics]
    width = len(header)
    summary = result.summary()
    command = " ".join(str(result.settings.get("command") or "").split())
    lines: List[str] = [
        f"% made by dynsal {result.settings['dynsal_version']}: {command}".rstrip(),
        r"% needs \usepackage{booktabs}",
        r"\begin{table}[t]", r"\centering",
        r"\caption{" + _caption(result) + "}", r"\label{tab:saliency-scores}",
        r"\begin{tabular}{l" + "r" * len(metrics) + "}", r"\toprule",
        " & ".join(header) + r" \\",
    ]
    for convention in CONVENTIONS:
        best = best_models(result, summary, convention, DIGITS)
        title = convention.replace("_", " ").capitalize()
        lines += [r"\midrule", rf"\multicolumn{{{width}}}{{l}}{{\emph{{{title}}}}} \\"]
        for model in result.models:
            cells = [escape(model)]
            for metric in metrics:
                value = summary[model][convention][metric]
                text = "--" if value is None else _number(value)
                cells.append(rf"\textbf{{{text}}}" if model in best[metric] else text)
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_latex(result: EvaluationResult, path) -> None:
    """Write `format_latex(result)` to `path` (atomically)."""
    write_text(path, format_latex(result))
