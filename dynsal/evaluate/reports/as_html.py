"""`--html`: one self-contained page (images as data: URIs, script and style inline, no network) to look at.

In order: the scores table (models and baselines × metrics, per averaging convention, best per column
marked, ↑/↓), the distribution over videos of each metric for each model (matplotlib), a per-video table
that sorts by any column, each model's best and worst frames by NSS (frame | ground truth with fixations |
prediction | overlay), per video a frame slider over a bounded sample of frames (frame, maps, fixations and
that frame's scores), each model's `settings.json` from `dynsal predict`, and the dynsal version, the
command and the date. Its cost grows with the sampled frames, not with the dataset's length.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from dynsal.evaluate.pairing import Frame, by_video
from dynsal.evaluate.reports.common import arrow, best_models, dataset_name, fmt, headline, write_text
from dynsal.evaluate.reports.figures import FramePanels, distribution_plot
from dynsal.evaluate.result import CONVENTIONS, LABELS, LOWER_IS_BETTER, EvaluationResult, FrameScore
from dynsal.predict.record import read_record

#: frames per video on its slider (evenly spaced, first and last included)
SLIDER_FRAMES = 8
#: best and worst frames shown per model
EXTREMES = 3
#: settings.json keys not shown (they list files or repeat the input)
_RECORD_NOISE = ("format", "version", "files", "videos", "input", "frame_range", "outputs")

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.2em .6em;border-bottom:1px solid #ddd}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:bold;background:#e8f4e8}
table.sortable th{cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}figure{display:inline-block;margin:0 .4em .8em 0}
figcaption{font-size:12px;color:#555}img{display:block}.strip{display:flex;flex-wrap:wrap;gap:.4em}
.strip img{width:240px;height:auto}
pre{background:#f6f6f6;padding:.6em;overflow:auto}.note{color:#555}.player{margin-bottom:1.5em}
"""
_SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, column) => th.addEventListener("click", () => {
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    heads.forEach(h => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const key = row => {
      const cell = row.cells[column];
      return cell.dataset.value === undefined ? cell.textContent : Number(cell.dataset.value || NaN);
    };
    const rows = Array.from(table.tBodies[0].rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (typeof x === "string") return ascending ? x.localeCompare(y) : y.localeCompare(x);
      if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) - Number.isNaN(y);
      return ascending ? x - y : y - x;
    });
    for (const row of rows) table.tBodies[0].appendChild(row);
  }));
}
for (const player of document.querySelectorAll(".player")) {
  const slider = player.querySelector("input[type=range]");
  const slides = Array.from(player.querySelectorAll(".slide"));
  const label = player.querySelector(".position");
  const show = () => {
    slides.forEach((slide, i) => { slide.hidden = i !== Number(slider.value); });
    label.textContent = `frame ${slides[slider.value].dataset.frame} (${Number(slider.value) + 1}/${slides.length})`;
  };
  slider.addEventListener("input", show);
  show();
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: Optional[float], best: bool = False) -> str:
    """A number cell: the shown value (4 decimals) and the exact one in data-value (as in --json)."""
    exact = "" if value is None else json.dumps(value)
    return f'<td class="num{" best" if best else ""}" data-value="{exact}">{fmt(value)}</td>'


def _metric_head(metric: str, model: Optional[str] = None) -> str:
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    of = "" if model is None else f' data-model="{_e(model)}"'
    suffix = "" if model is None else f" · {_e(model)}"
    return f'<th title="{better} is better" data-metric="{metric}"{of}>{LABELS[metric]} {arrow(metric)}{suffix}</th>'


def _scores(result: EvaluationResult, summary: dict) -> str:
    out = ["<section id=scores><h2>Scores</h2>",
           '<p class=note>Best per column in bold on green; ↑ higher is better, ↓ lower is better. '
           f'Baselines: {_e(", ".join(result.settings["baselines"]) or "none")}.</p>']
    for convention, meaning in CONVENTIONS.items():
        best = best_models(result, summary, convention, 4)
        out.append(f'<table class=scores data-convention="{convention}"><caption><b>'
                   f'{convention.replace("_", " ")}</b>: {_e(meaning)}</caption><thead><tr><th>model</th>'
                   + "".join(_metric_head(m) for m in result.metrics) + "</tr></thead><tbody>")
        for model in result.models:
            out.append(f'<tr data-model="{_e(model)}"><th>{_e(model)}</th>' + "".join(
                _cell(summary[model][convention][m], model in best[m]) for m in result.metrics) + "</tr>")
        out.append("</tbody></table>")
    return "\n".join(out) + "</section>"


def _distributions(result: EvaluationResult, per_video: dict) -> str:
    uri = distribution_plot(per_video, result.models, result.metrics)
    return ("<section id=distributions><h2>Distribution over videos</h2><p class=note>Per metric, each model's "
            "per-video means (box: quartiles; dots: videos).</p>"
            f'<img src="{uri}" alt="per-video distribution of every metric for each model"></section>')


def _videos_table(result: EvaluationResult, per_video: dict) -> str:
    videos = list(per_video[result.models[0]])
    heads = ["<th>video</th>", "<th>frames</th>"] + [
        _metric_head(metric, model) for metric in result.metrics for model in result.models]
    out = ["<section id=videos><h2>Per video</h2><p class=note>Each video's mean over its frames; click a "
           "column to sort.</p><table class=sortable id=video-table><thead><tr>" + "".join(heads) + "</tr></thead>"
           "<tbody>"]
    for video in videos:
        count = per_video[result.models[0]][video]["frames"]
        cells = [f"<td>{_e(video)}</td>", f'<td class=num data-value="{count}">{count}</td>']
        cells += [_cell(per_video[model][video][metric]) for metric in result.metrics for model in result.models]
        out.append(f'<tr data-video="{_e(video)}">' + "".join(cells) + "</tr>")
    return "\n".join(out) + "</tbody></table></section>"


def _ranking_metric(result: EvaluationResult) -> str:
    return "nss" if "nss" in result.metrics else result.metrics[0]


def _scores_of(result: EvaluationResult) -> Dict[tuple, FrameScore]:
    return {(r.model, r.video, r.frame): r for r in result.rows}


def _figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _extremes(result: EvaluationResult, models: Sequence[str]) -> str:
    metric = _ranking_metric(result)
    frames = {(f.video, f.frame): f for f in result.frames}
    gt_dir = Path(str(result.settings["ground_truth_dir"]))
    out = [f"<section id=extremes><h2>Best and worst frames by {LABELS[metric]}</h2><p class=note>frame | "
           "ground truth (density, fixations in red) | prediction | overlay.</p>"]
    for model in models:
        scored = sorted((r for r in result.rows if r.model == model and r.scores[metric] is not None),
                        key=lambda r: r.scores[metric], reverse=metric not in LOWER_IS_BETTER)
        out.append(f'<h3 id="extremes-{_e(model)}">{_e(model)}</h3>')
        for title, picked in (("best", scored[:EXTREMES]), ("worst", scored[::-1][:EXTREMES])):
            for row in picked:
                panels = FramePanels(gt_dir, frames[(row.video, row.frame)], models)
                name = f"{row.video}/{row.frame}"
                out.append(f'<div class="strip {title}" data-model="{_e(model)}" data-frame="{_e(name)}">'
                           + _figure(panels.frame(), f"{title}: {name}, {LABELS[metric]} {fmt(row.scores[metric])}")
                           + _figure(panels.truth(), "ground truth and fixations")
                           + _figure(panels.map(model), f"{model}") + _figure(panels.overlay(model), "overlay")
                           + "</div>")
    return "\n".join(out) + "</section>"


def slider_indices(count: int, wanted: int) -> List[int]:
    """`wanted` evenly spaced indices of `count` frames, first and last included (all when fewer)."""
    return sorted({int(i) for i in np.round(np.linspace(0, count - 1, min(count, wanted)))})


def _slide(result: EvaluationResult, frame: Frame, models: Sequence[str], scores, hidden: bool) -> str:
    panels = FramePanels(Path(str(result.settings["ground_truth_dir"])), frame, models)
    figures = [_figure(panels.frame(), "frame" if panels.has_image else "no frame image (GT/<video>/images/)"),
               _figure(panels.truth(), "ground truth and fixations")]
    figures += [_figure(panels.map(model), model) for model in models]
    table = ("<table class=frame-scores><thead><tr><th>model</th>" + "".join(_metric_head(m) for m in result.metrics)
             + "</tr></thead><tbody>" + "".join(
                 f'<tr data-model="{_e(m)}"><th>{_e(m)}</th>'
                 + "".join(_cell(scores[(m, frame.video, frame.frame)].scores[k]) for k in result.metrics) + "</tr>"
                 for m in result.models) + "</tbody></table>")
    return (f'<div class=slide data-frame="{_e(frame.frame)}"{" hidden" if hidden else ""}>'
            f'<div class=strip>{"".join(figures)}</div>{table}</div>')


def _players(result: EvaluationResult, models: Sequence[str], slider_frames: int) -> str:
    scores = _scores_of(result)
    out = [f"<section id=players><h2>Frames of each video</h2><p class=note>Up to {slider_frames} frames per video, "
           "evenly spaced: the frame, the ground truth and each model's map with the fixations (red), and that "
           "frame's scores.</p>"]
    for start, stop in by_video(result.frames):
        frames = [result.frames[start + i] for i in slider_indices(stop - start, slider_frames)]
        video = frames[0].video
        slides = "".join(_slide(result, f, models, scores, i > 0) for i, f in enumerate(frames))
        out.append(f'<div class=player data-video="{_e(video)}"><h3>{_e(video)}</h3>'
                   f'<input type=range min=0 max={len(frames) - 1} value=0 step=1 aria-label="frame of {_e(video)}">'
                   f' <span class=position></span>{slides}</div>')
    return "\n".join(out) + "</section>"


def _model_settings(result: EvaluationResult) -> str:
    out = ["<section id=settings><h2>Models</h2>"]
    videos = sorted({f.video for f in result.frames})
    for model, folder in dict(result.settings["models"]).items():
        found: Dict[str, List[str]] = {}
        for video in videos:
            record = read_record(Path(folder) / video)
            if record is not None:
                shown = {k: v for k, v in record.items() if k not in _RECORD_NOISE}
                found.setdefault(json.dumps(shown, indent=2, sort_keys=True), []).append(video)
        out.append(f'<h3>{_e(model)}</h3><p class=note>{_e(folder)}</p>')
        if not found:
            out.append("<p class=note>no settings.json of <code>dynsal predict</code> in its video folders.</p>")
        for text, which in found.items():
            scope = "every video" if len(which) == len(videos) else f"{len(which)} video(s): {', '.join(which[:5])}"
            out.append(f'<p class=note>settings.json of {_e(scope)}</p><pre data-model="{_e(model)}">{_e(text)}'
                       "</pre>")
    return "\n".join(out) + "</section>"


def format_html(result: EvaluationResult, slider_frames: int = SLIDER_FRAMES) -> str:
    """The report as one HTML document."""
    s = result.settings
    models = [m for m in result.models if m not in s["baselines"]]
    title = f"dynsal eval: {dataset_name(result)}"
    per_video = result.per_video()
    parts = [
        '<!DOCTYPE html><html lang=en><head><meta charset=utf-8>',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        'style-src \'unsafe-inline\'; script-src \'unsafe-inline\'">',
        f'<link rel=icon href="data:,"><title>{_e(title)}</title><style>{_STYLE}</style></head><body>',
        f"<header><h1>{_e(title)}</h1><p>{_e(headline(result))}.</p></header>",
        _scores(result, result.summary()), _distributions(result, per_video), _videos_table(result, per_video),
        _extremes(result, models),
        _players(result, models, slider_frames), _model_settings(result),
        f'<footer><h2>Run</h2><dl><dt>dynsal</dt><dd id=version>{_e(s["dynsal_version"])}</dd><dt>command</dt>'
        f'<dd><code id=command>{_e(s.get("command") or "(Python API)")}</code></dd><dt>date</dt>'
        f'<dd id=date>{_e(s.get("date", ""))}</dd><dt>ground truth</dt><dd>{_e(s["ground_truth_dir"])}</dd></dl>'
        "</footer>",
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(result: EvaluationResult, path, slider_frames: int = SLIDER_FRAMES) -> None:
    """Write `format_html(result, slider_frames)` to `path` (atomically)."""
    write_text(path, format_html(result, slider_frames))
