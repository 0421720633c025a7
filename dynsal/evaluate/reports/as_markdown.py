"""`--markdown`: the headline and one summary table per averaging convention."""
from __future__ import annotations

from dynsal.evaluate.reports.common import headline, summary_lines, write_text
from dynsal.evaluate.result import CONVENTIONS, EvaluationResult


def write_markdown(result: EvaluationResult, path) -> None:
    """Markdown: the headline and one table per averaging convention."""
    out = [f"{headline(result)}. KLD: lower is better; the others: higher is better."]
    for convention, meaning in CONVENTIONS.items():
        lines = summary_lines(result, convention)
        out += ["", f"**{convention.replace('_', ' ')}** ({meaning})", ""]
        out.append("| " + " | ".join(lines[0]) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(lines[0]) - 1)) + "|")
        out += ["| " + " | ".join(row) + " |" for row in lines[1:]]
    write_text(path, "\n".join(out) + "\n")
