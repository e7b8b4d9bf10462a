"""The result of :func:`twinforge.evaluate`: a JSON summary and a standalone HTML report.

The HTML report is one file that works offline: plotly.js is inlined (no script or style is fetched from a
network), and the plots are drawn from small precomputed summaries (shares per bin or level, matrices), so the
file's size does not grow with the number of rows.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.io import atomic_write_text, check_output

__all__ = ["EvaluationReport"]

REAL_COLOUR = "#1f77b4"
SYNTH_COLOUR = "#ff7f0e"
HOLDOUT_COLOUR = "#2ca02c"


class EvaluationReport:
    """Scores of one evaluation; made by :func:`twinforge.evaluate`.

    Attributes
    ----------
    fidelity, utility, privacy, temporal : dict
        Each section's headline scores (e.g. ``report.fidelity["column_shapes"]``) and details.
    summary : list of dict
        One row per headline metric: ``section``, ``metric``, ``value``, ``ideal``, ``meaning``.
    notes : list of str
        What was skipped or left out, and why.

    Examples
    --------
    >>> import pandas as pd
    >>> import twinforge
    >>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 25, "c": ["a", "b", "a", "c"] * 25})
    >>> report = twinforge.evaluate(real, real.sample(frac=1.0, random_state=1), progress=False)
    >>> report.fidelity["column_shapes"]
    1.0
    >>> import json
    >>> sorted(json.loads(report.to_json()))[:3]
    ['data', 'excluded_columns', 'fidelity']
    """

    def __init__(
        self,
        document: dict[str, Any],
        *,
        plots: dict[str, Any] | None = None,
        inputs: list | None = None,
        timings: dict[str, float] | None = None,
    ):
        self._document = _jsonable(document)
        self._plots = plots or {}
        self._inputs = list(inputs or [])
        #: Seconds per step of the evaluation (kept out of the JSON, which depends only on the inputs and seed).
        self.timings = dict(timings or {})

    @property
    def fidelity(self) -> dict[str, Any]:
        return self._document["fidelity"]

    @property
    def utility(self) -> dict[str, Any]:
        return self._document["utility"]

    @property
    def privacy(self) -> dict[str, Any]:
        return self._document["privacy"]

    @property
    def temporal(self) -> dict[str, Any]:
        """Temporal scores of per-entity time series (empty when the data are not time series)."""
        return self._document.get("temporal") or {}

    @property
    def summary(self) -> list[dict[str, Any]]:
        return self._document["summary"]

    @property
    def notes(self) -> list[str]:
        return self._document["notes"]

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain JSON-able data (a deep copy)."""
        return json.loads(json.dumps(self._document))

    def to_json(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> str:
        """The report as JSON; also written atomically to ``path`` if given (refused if it exists, unless
        ``overwrite``, and always if it is one of the inputs)."""
        text = json.dumps(self._document, indent=2, allow_nan=False)
        if path is not None:
            out = check_output(path, overwrite=overwrite, inputs=self._inputs)
            atomic_write_text(out, text + "\n")
        return text

    def to_html(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the standalone HTML report to ``path`` (atomically; same rules as :meth:`to_json`)."""
        out = check_output(path, overwrite=overwrite, inputs=self._inputs)
        atomic_write_text(out, self.html())
        return out

    def html(self) -> str:
        """The HTML report as a string."""
        import jinja2
        from plotly.offline import get_plotlyjs

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("twinforge.evaluate", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["num"] = _num
        env.filters["rows_used"] = _rows_used
        figures = self._figures()
        template = env.get_template("report.html.j2")
        return template.render(
            doc=self._document,
            figures=figures,
            figures_json=_script_json({k: v for k, v in figures.items()}),
            plotly_js=get_plotlyjs(),
            worst_pairs=self._worst_pairs(),
        )

    def __repr__(self) -> str:
        heads = ", ".join(f"{r['metric']}={_num(r['value'])}" for r in self.summary[:4])
        return f"EvaluationReport({heads}, ...)"

    # ----------------------------------------------------------------------------------------- plots
    def _worst_pairs(self, k: int = 25) -> list[dict[str, Any]]:
        pairs = [p for p in self.fidelity.get("pairs", []) if p.get("score") is not None]
        counted = sorted((p for p in pairs if p["counted"]), key=lambda p: p["score"])
        others = sorted((p for p in pairs if not p["counted"]), key=lambda p: p["score"])
        return (counted + others)[:k]

    def _figures(self) -> dict[str, dict[str, Any]]:
        figs: dict[str, dict[str, Any]] = {}
        for i, (name, h) in enumerate(self._plots.get("columns", {}).items()):
            figs[f"col-{i}"] = {"title": name, **_column_figure(name, h)}
        fid = self.fidelity
        for key, label, zmin in (("mutual_information_matrix", "normalised mutual information", 0),
                                 ("correlation_matrix", "Pearson correlation", -1)):  # fmt: skip
            m = fid.get(key)
            if m and m.get("columns") and len(m["columns"]) >= 2:
                for table in ("real", "synthetic"):
                    figs[f"{key}-{table}"] = _heatmap(m["columns"], m[table], f"{label}: {table}", zmin)
        hist = (self.privacy or {}).get("dcr_histogram")
        if hist:
            figs["dcr"] = _dcr_figure(hist)
        ab = fid.get("alpha_beta") or {}
        if ab.get("alpha"):
            figs["alpha-beta"] = _alpha_beta_figure(ab)
        channels = (self.temporal.get("autocorrelation") or {}).get("channels") or {}
        for i, (name, c) in enumerate(channels.items()):
            figs[f"acf-{i}"] = {"title": name, **_acf_figure(name, c)}
        xcorr = self.temporal.get("cross_correlation") or {}
        if xcorr.get("real"):
            for table in ("real", "synthetic"):
                m = xcorr[table]["lag0"]
                figs[f"xcorr-{table}"] = _heatmap(xcorr["channels"], m, f"within-entity correlation: {table}", -1)
        return figs


def _column_figure(name: str, h: dict[str, Any]) -> dict[str, Any]:
    kind = h["kind"]
    traces = [
        {"type": "bar", "x": h["x"], "y": h["real"], "name": "real", "marker": {"color": REAL_COLOUR}},
        {"type": "bar", "x": h["x"], "y": h["synthetic"], "name": "synthetic", "marker": {"color": SYNTH_COLOUR}},
    ]
    if kind == "hist":
        for t in traces:
            t["opacity"] = 0.55
    layout = {
        "title": {"text": name, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "barmode": "group" if kind == "bar" else "overlay",
        "bargap": 0.05,
        "height": 280,
        "margin": {"l": 45, "r": 10, "t": 40, "b": 60},
        "yaxis": {"title": {"text": "share of rows"}},
        "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    }
    return {"data": traces, "layout": layout}


def _heatmap(columns: list[str], z: list[list[float]], title: str, zmin: float) -> dict[str, Any]:
    return {
        "title": title,
        "data": [
            {
                "type": "heatmap",
                "z": z,
                "x": columns,
                "y": columns,
                "zmin": zmin,
                "zmax": 1,
                "colorscale": "RdBu" if zmin < 0 else "Blues",
                "reversescale": True,
            }
        ],
        "layout": {
            "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
            "height": 460,
            "margin": {"l": 110, "r": 10, "t": 40, "b": 110},
            "yaxis": {"autorange": "reversed"},
        },
    }


def _acf_figure(name: str, c: dict[str, Any]) -> dict[str, Any]:
    lags = list(range(1, len(c["real"]) + 1))
    label = "autocorrelation" if c["statistic"] == "autocorrelation" else "agreement with k steps earlier"
    data = [
        {"type": "scatter", "x": lags, "y": c["real"], "name": "real", "line": {"color": REAL_COLOUR}},
        {"type": "scatter", "x": lags, "y": c["synthetic"], "name": "synthetic", "line": {"color": SYNTH_COLOUR}},
    ]
    layout = {
        "title": {"text": name, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "height": 280,
        "margin": {"l": 45, "r": 10, "t": 40, "b": 45},
        "xaxis": {"title": {"text": "lag (steps)"}},
        "yaxis": {"title": {"text": label}},
        "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    }
    return {"data": data, "layout": layout}


def _dcr_figure(hist: dict[str, Any]) -> dict[str, Any]:
    edges = np.asarray(hist["edges"])
    centres = ((edges[:-1] + edges[1:]) / 2).round(4).tolist()
    colours = {"synthetic": SYNTH_COLOUR, "holdout": HOLDOUT_COLOUR}
    names = {"synthetic": "synthetic → training", "holdout": "holdout → training"}
    data = [
        {"type": "bar", "x": centres, "y": hist[k], "name": names[k], "opacity": 0.6, "marker": {"color": colours[k]}}
        for k in ("synthetic", "holdout")
        if k in hist
    ]
    layout = {
        "title": {"text": "distance to closest training record", "font": {"size": 14}},
        "barmode": "overlay",
        "height": 320,
        "xaxis": {"title": {"text": "distance (mixed-type encoding)"}},
        "yaxis": {"title": {"text": "share of rows"}},
        "margin": {"l": 50, "r": 10, "t": 40, "b": 50},
    }
    return {"title": "DCR", "data": data, "layout": layout}


def _alpha_beta_figure(ab: dict[str, Any]) -> dict[str, Any]:
    a = ab["alpha"]
    data = [
        {"type": "scatter", "x": a, "y": a, "name": "ideal", "line": {"dash": "dot", "color": "#888"}},
        {"type": "scatter", "x": a, "y": ab["precision_curve"], "name": "alpha-precision P(alpha)"},
        {"type": "scatter", "x": a, "y": ab["recall_curve"], "name": "beta-recall R(beta)"},
    ]
    layout = {
        "title": {"text": "alpha-precision and beta-recall curves", "font": {"size": 14}},
        "height": 320,
        "xaxis": {"title": {"text": "alpha, beta"}},
        "margin": {"l": 50, "r": 10, "t": 40, "b": 50},
    }
    return {"title": "alpha/beta", "data": data, "layout": layout}


# ----------------------------------------------------------------------------------------- helpers
def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, (float, np.floating)):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _rows_used(what: Any) -> str:
    """A subsampling record as text: 'real: 400 of 500; synthetic: 300 of 500' (or '200 per side of ...')."""
    if not isinstance(what, dict):
        return str(what)
    if "rows_per_side" in what:
        of = what.get("of") or {}
        sizes = ", ".join(f"{t} {n:,}" for t, n in of.items())
        return f"{what['rows_per_side']:,} per side" + (f" (of {sizes})" if sizes else "")
    if "rows" in what and "of" in what:
        return f"{what['rows']:,} of {what['of']:,}"
    return "; ".join(f"{t}: {_rows_used(v)}" for t, v in what.items())


def _jsonable(obj: Any) -> Any:
    """Plain JSON data: numpy scalars to Python, NaN and infinities to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _script_json(obj: Any) -> str:
    """JSON safe to place inside a <script> element (no '</' can close it early)."""
    return json.dumps(_jsonable(obj), allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")
