"""The summary printed by `dynsal eval`: aligned text, one block per averaging convention."""
from __future__ import annotations

from dynsal.evaluate.reports.common import headline, summary_lines
from dynsal.evaluate.result import CONVENTIONS, EvaluationResult


def format_table(result: EvaluationResult) -> str:
    """The summary as aligned text: one block per averaging convention (KLD: lower is better)."""
    out = [headline(result)]
    for convention, meaning in CONVENTIONS.items():
        lines = summary_lines(result, convention)
        widths = [max(len(row[c]) for row in lines) for c in range(len(lines[0]))]
        out.append(f"\n{convention.replace('_', ' ')} ({meaning}):")
        out += ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in
                          enumerate(zip(row, widths))).rstrip() for row in lines]
    return "\n".join(out) + "\n"
