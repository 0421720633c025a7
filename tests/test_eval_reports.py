"""`dynsal eval --latex` and `--html`: the LaTeX table compiled by pdflatex, the HTML report opened in headless
Chromium (fixtures in tests/conftest.py; in CI, where .ci/report_tools.sh installs both, they must run)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from dynsal.cli import main
from dynsal.evaluate.result import DHF1K_ORDER
from tests.test_evaluate import add_model, make_dataset


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """A small dataset with two models (`sts_good`, `sts_shifted`: names with LaTeX's special `_`)."""
    root = tmp_path_factory.mktemp("reports")
    pred, gt = make_dataset(root)
    return {"sts_good": pred, "sts_shifted": add_model(pred, "shifted", 5)}, gt


def _eval(models, gt, *options):
    argv = ["eval"] + [a for name, folder in models.items() for a in ("--model", f"{name}={folder}")]
    assert main(argv + [str(gt), "--baselines", "centre,chance", "--quiet", *map(str, options)]) == 0


# ---------------------------------------------------------------------------------------------- LaTeX


def _latex_rows(tex: str):
    """{block title: {model: [cells]}} of the table's body."""
    blocks, block = {}, None
    for line in tex.splitlines():
        title = re.match(r"\\multicolumn\{\d+\}\{l\}\{\\emph\{(.+)\}\} \\\\$", line)
        if title:
            block = blocks.setdefault(title.group(1), {})
        elif block is not None and line.endswith(r" \\"):
            cells = [c.strip() for c in line[:-3].split("&")]
            block[cells[0]] = cells[1:]
    return blocks


def test_latex_table_is_booktabs_in_dhf1k_order_with_the_best_in_bold(two_models, tmp_path):
    models, gt = two_models
    _eval(models, gt, "--latex", tmp_path / "t.tex", "--json", tmp_path / "s.json")
    tex = (tmp_path / "t.tex").read_text()
    summary = json.loads((tmp_path / "s.json").read_text())["summary"]
    header = next(line for line in tex.splitlines() if line.startswith("Model &"))
    assert header == (r"Model & AUC-J $\uparrow$ & SIM $\uparrow$ & sAUC $\uparrow$ & CC $\uparrow$ & "
                      r"NSS $\uparrow$ & AUC-B $\uparrow$ & KLD $\downarrow$ & IG $\uparrow$ \\")
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrrrr}"):
        assert command in tex
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption{"))
    assert "gt (3 videos, 10 frames)" in caption and "mean over videos" in caption
    assert "mean over all frames" in caption and "Baselines: centre, chance" in caption
    blocks = _latex_rows(tex)
    assert list(blocks) == ["Mean over videos", "Mean over frames"]
    for title, rows in blocks.items():
        convention = title.lower().replace(" ", "_")
        assert list(rows) == [r"sts\_good", r"sts\_shifted", "centre", "chance"]
        for column, metric in enumerate(DHF1K_ORDER):
            values = {model: round(summary[model][convention][metric], 3) for model in summary}
            best = (min if metric == "kld" else max)(values.values())
            for model, value in values.items():
                cell = rows[model.replace("_", r"\_")][column]
                bold = cell.startswith(r"\textbf{")
                number = cell[len(r"\textbf{"):-1] if bold else cell
                assert float(number.replace("$-$", "-")) == pytest.approx(value, abs=1e-9), (title, model, metric)
                assert re.fullmatch(r"(\$-\$)?\d+\.\d{3}", number), number
                assert bold == (value == best), (title, model, metric)


def test_latex_table_compiles_with_pdflatex(two_models, tmp_path, pdflatex):
    models, gt = two_models
    _eval(models, gt, "--latex", tmp_path / "table.tex")
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                        "\\input{table}\n\\end{document}\n")
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000
    log = (tmp_path / "paper.log").read_text(errors="replace")
    assert not re.search(r"^! ", log, re.M) and "Undefined control sequence" not in log
