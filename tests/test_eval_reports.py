"""`dynsal eval --latex` and `--html`: the LaTeX table compiled by pdflatex, the HTML report opened in headless
Chromium (fixtures in tests/conftest.py; in CI, where .ci/report_tools.sh installs both, they must run)."""
from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from dynsal.cli import main
from dynsal.evaluate.reports import figures
from dynsal.evaluate.result import DHF1K_ORDER
from tests.browser import Browser
from tests.test_evaluate import SHAPE, VIDEOS, add_model, make_dataset


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


# ---------------------------------------------------------------------------------------------- HTML

SLIDER = 3  # frames per video on the slider: v3's 5 frames show as 0001, 0003, 0005


@pytest.fixture(scope="module")
def report(two_models, tmp_path_factory):
    """`dynsal eval --html` of the two models (frame images in GT/<video>/images, one model with a
    settings.json of dynsal predict), with its --json beside it."""
    models, gt = two_models
    rng = np.random.default_rng(1)
    for density in sorted(gt.glob("*/maps/*.png")):
        image = density.parent.parent / "images" / density.name
        image.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, SHAPE + (3,), dtype=np.uint8)).save(image)
    for video in VIDEOS:
        record = {"format": "dynsal-predict", "version": 1, "files": [], "videos": [], "net": "stsconv",
                  "weights_sha256": "ab" * 32, "flow": {"method": "dis", "encoding": "middlebury"},
                  "postprocessing": {"blur": True, "stretch": True}}
        (models["sts_good"] / video / "settings.json").write_text(json.dumps(record))
    out = tmp_path_factory.mktemp("report")
    _eval(models, gt, "--html", out / "report.html", "--json", out / "scores.json", "--html-frames", SLIDER)
    return out / "report.html", json.loads((out / "scores.json").read_text())


def test_html_report_is_self_contained(report):
    page = report[0].read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", page), "every image and link is inline"
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert "Content-Security-Policy" in page


def test_html_report_needs_matplotlib_before_scoring(two_models, tmp_path, capsys, monkeypatch):
    models, gt = two_models
    monkeypatch.setattr(figures.importlib.util, "find_spec", lambda name: None)
    code = main(["eval", str(models["sts_good"]), str(gt), "--html", str(tmp_path / "r.html"), "--quiet"])
    assert code == 1 and 'pip install "dynsal[plot]"' in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("argv, words", [
    (["--html-frames", "0"], "--html-frames must be ≥ 1, got 0"),
    (["--latex", "{gt}/t.tex"], "--latex {gt}/t.tex would be written on or inside"),
    (["--html", "{good}/v1/r.html"], "would be written on or inside"),
])
def test_bad_report_options_exit_1_before_scoring(two_models, tmp_path, capsys, argv, words):
    models, gt = two_models
    names = {"gt": gt, "good": models["sts_good"]}
    argv = [a.format(**names) for a in argv]
    code = main(["eval", "--model", f"sts_good={models['sts_good']}", str(gt), "--html", str(tmp_path / "r.html"),
                 *argv, "--quiet"])
    assert code == 1 and words.format(**names) in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _visible(selector: str) -> str:
    return f"Array.from(document.querySelectorAll({json.dumps(selector)})).filter(e => e.offsetParent !== null)"


def test_html_report_in_chromium(report, chromium):
    path, doc = report
    with Browser(chromium) as browser:
        url = browser.open(path)
        # opens with no console error and no network request; every image decodes
        assert browser.console_errors == []
        assert [r for r in browser.requests if r != url and not r.startswith("data:")] == []
        images = browser.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) > 50 and all(done and width > 0 for done, width, _ in images), images
        # the page opens with the scores table, whose numbers are --json's
        assert browser.evaluate("document.querySelector('section').id") == "scores"
        cells = browser.evaluate("Array.from(document.querySelectorAll('table.scores td')).map(td => "
                                 "[td.closest('table').dataset.convention, td.parentElement.dataset.model, "
                                 "td.cellIndex, td.dataset.value, td.textContent, td.classList.contains('best')])")
        metrics = doc["settings"]["metrics"]
        assert len(cells) == 2 * len(doc["summary"]) * len(metrics)
        for convention, model, column, exact, shown, best in cells:
            metric = metrics[column - 1]
            value = doc["summary"][model][convention][metric]
            assert float(exact) == value and shown == f"{value:.4f}", (convention, model, metric)
            values = [round(doc["summary"][m][convention][metric], 4) for m in doc["summary"]]
            assert best == (round(value, 4) == (min if metric == "kld" else max)(values)), (model, metric)
        heads = browser.evaluate("Array.from(document.querySelectorAll('table.scores')[0].tHead.rows[0].cells)"
                                 ".map(c => c.textContent)")
        assert heads[1:] == ["AUC-J ↑", "AUC-B ↑", "sAUC ↑", "NSS ↑", "CC ↑", "SIM ↑", "KLD ↓", "IG ↑"]
        captions = browser.evaluate("Array.from(document.querySelectorAll('table.scores caption'))"
                                    ".map(c => c.textContent)")
        assert captions[0].startswith("mean over videos") and captions[1].startswith("mean over frames")

        # the per-video table holds --json's per-video means and sorts by any column, both ways
        def column(index):
            cell = f"r.cells[{index}]"
            return browser.evaluate("Array.from(document.querySelectorAll('#video-table tbody tr')).map(r => "
                                    f"[r.dataset.video, {cell}.dataset.value ?? {cell}.textContent])")

        heads = browser.evaluate("Array.from(document.querySelectorAll('#video-table thead th')).map(th => "
                                 "[th.dataset.metric, th.dataset.model])")
        for index, (metric, model) in enumerate(heads[2:], start=2):
            for video, exact in column(index):
                assert float(exact) == doc["videos"][model][video][metric], (video, model, metric)
        nss = 2 + heads[2:].index(["nss", "sts_shifted"])
        browser.click(f"#video-table thead th:nth-child({nss + 1})")
        ascending = [float(v) for _, v in column(nss)]
        assert ascending == sorted(ascending) and len(set(ascending)) == 3
        browser.click(f"#video-table thead th:nth-child({nss + 1})")
        assert [float(v) for _, v in column(nss)] == sorted(ascending, reverse=True)
        browser.click("#video-table thead th:nth-child(1)")
        assert [v for v, _ in column(0)] == sorted(VIDEOS)
        assert browser.evaluate("document.querySelector('#video-table thead th').getAttribute('aria-sort')") \
            == "ascending"

        # the slider shows frame, maps and fixations with that frame's scores
        player = '.player[data-video="v3"]'

        def shown():
            slide = browser.evaluate(f"{_visible(player + ' .slide')}.map(s => s.dataset.frame)")
            scores = browser.evaluate(f"{_visible(player + ' .slide td')}.map(td => "
                                      "[td.parentElement.dataset.model, td.cellIndex, td.dataset.value])")
            widths = browser.evaluate(f"{_visible(player + ' .slide img')}.map(i => i.naturalWidth)")
            return slide, scores, widths

        frames = {(f["model"], f["frame"]): f for f in doc["frames"] if f["video"] == "v3"}
        for key, frame in ((None, "0001"), ("ArrowRight", "0003"), ("ArrowRight", "0005"), ("ArrowLeft", "0003")):
            if key:
                browser.press(f"{player} input", key, 39 if key == "ArrowRight" else 37)
            slide, scores, widths = shown()
            assert slide == [frame]
            assert len(widths) == 4 and all(w > 0 for w in widths)  # frame, ground truth, one map per model
            assert len(scores) == len(doc["summary"]) * len(metrics)
            for model, column_index, exact in scores:
                assert float(exact) == frames[(model, frame)][metrics[column_index - 1]], (frame, model)
            label = browser.evaluate(f"document.querySelector('{player} .position').textContent")
            assert label.startswith(f"frame {frame} (")

        # best and worst frames by NSS for each model; settings.json; version, command and date
        for model in ("sts_good", "sts_shifted"):
            best = browser.evaluate(f"Array.from(document.querySelectorAll('.strip.best[data-model=\"{model}\"]'))"
                                    ".map(s => s.dataset.frame)")
            ranked = sorted((f for f in doc["frames"] if f["model"] == model), key=lambda f: -f["nss"])
            assert best == [f"{f['video']}/{f['frame']}" for f in ranked[:3]]
        settings = browser.evaluate("document.querySelector('pre[data-model=\"sts_good\"]').textContent")
        assert json.loads(settings)["net"] == "stsconv"
        command = browser.evaluate("document.getElementById('command').textContent")
        assert command.startswith("dynsal eval --model sts_good=") and "--html" in command
        assert browser.evaluate("document.getElementById('version').textContent") == doc["settings"]["dynsal_version"]
        assert browser.evaluate("document.getElementById('date').textContent") == doc["settings"]["date"]
        assert browser.console_errors == []
        browser.evaluate("window.scrollTo(0, 0)")
        shot = browser.screenshot(path.with_name("report.png"))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
