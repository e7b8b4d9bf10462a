"""twinforge.evaluate end to end: headline scores, the JSON summary, the offline HTML report and bad input."""

from __future__ import annotations

import doctest
import json
import re
import sys

import numpy as np
import pandas as pd
import pytest

import twinforge
from twinforge.errors import DataError, MetadataError, OutputError, ParameterError

from ._evaluate_data import make_people, shuffle_columns

REQUIRED = {
    "fidelity": ("column_shapes", "column_pair_trends", "detection_auc"),
    "utility": ("tstr", "trtr"),
    "privacy": ("dcr_share", "exact_copy_rate", "mia_auc"),
}


@pytest.fixture(scope="module")
def tables():
    return make_people(500, seed=0), make_people(500, seed=1), make_people(500, seed=2)


@pytest.fixture(scope="module")
def good(tables):
    train, holdout, fresh = tables
    return twinforge.evaluate(train, fresh, holdout, target="bought", sensitive="region", progress=False)


@pytest.fixture(scope="module")
def leak(tables):
    train, holdout, _ = tables
    return twinforge.evaluate(train, train.copy(), holdout, target="bought", progress=False)


def test_good_synthetic_data_scores_near_ideal(good):
    f, u, p = good.fidelity, good.utility, good.privacy
    assert f["column_shapes"] > 0.93 and f["column_pair_trends"] > 0.85
    assert abs(f["detection_auc"] - 0.5) < 0.1
    assert f["alpha_precision"] > 0.85 and f["beta_recall"] > 0.85
    assert u["ratio"] > 0.9
    assert abs(p["dcr_share"] - p["dcr_share_ideal"]) < 0.08
    assert p["exact_copy_rate"] == 0.0 and p["mia_auc"] < 0.62


def test_identical_data_scores_one_on_fidelity_and_flags_privacy(leak):
    f, p = leak.fidelity, leak.privacy
    assert f["column_shapes"] == 1.0 and f["column_pair_trends"] == 1.0 and f["missing_rates"] == 1.0
    assert p["exact_copy_rate"] == 1.0 and p["dcr_share"] == 1.0 and p["mia_auc"] > 0.95
    assert leak.utility["ratio"] == 1.0


def test_json_has_the_required_keys_and_details(good, tmp_path):
    doc = json.loads(good.to_json())
    for section, keys in REQUIRED.items():
        for key in keys:
            assert key in doc[section], f"{section}.{key} missing"
    assert doc["twinforge_version"] == twinforge.__version__
    assert set(doc["fidelity"]["columns"]) == {"age", "income", "region", "member", "signup", "bought", "spend"}
    assert doc["fidelity"]["columns"]["income"]["shape_metric"] == "KSComplement"
    assert len(doc["fidelity"]["pairs"]) == 21
    assert {"subsampled", "notes", "excluded_columns", "summary", "settings"} <= set(doc)
    assert doc["excluded_columns"] == {"customer_id": "id", "email": "pii (email)"}
    assert "customer_id (id)" in doc["notes"][0]
    assert doc["privacy"]["attribute_inference"][0]["column"] == "region"
    ideals = {(r["section"], r["metric"]): r["ideal"] for r in doc["summary"]}
    assert ideals[("privacy", "dcr_share")] == doc["privacy"]["dcr_share_ideal"]
    assert ideals[("fidelity", "detection_auc")] == 0.5
    path = good.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == doc and path == good.to_json()


def test_html_report_is_offline_and_holds_the_plots(good, tmp_path):
    out = good.to_html(tmp_path / "report.html")
    html = out.read_text()
    # no script, stylesheet or image fetched from anywhere
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<(link|img|iframe)[^>]*\b(href|src)\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert "Plotly.newPlot" in html and "plotly.js" in html.lower()
    figures = json.loads(re.search(r"var figures = (\{.*?\});\n", html, re.S).group(1))
    for i in range(7):
        assert f'id="col-{i}"' in html and f"col-{i}" in figures
    for key in (
        "mutual_information_matrix-real",
        "mutual_information_matrix-synthetic",
        "correlation_matrix-real",
        "dcr",
    ):
        assert key in figures and f'id="{key}"' in html
    assert figures["col-0"]["data"][0]["name"] == "real"
    assert ">column_shapes<" in html and "dcr_share" in html


def test_outputs_are_not_overwritten_and_inputs_never(good, tmp_path, tables):
    good.to_html(tmp_path / "report.html")
    with pytest.raises(OutputError, match="already exists"):
        good.to_html(tmp_path / "report.html")
    good.to_html(tmp_path / "report.html", overwrite=True)
    train, _holdout, fresh = tables
    train.to_csv(tmp_path / "train.csv", index=False)
    report = twinforge.evaluate(tmp_path / "train.csv", fresh, parts=["fidelity"], progress=False)
    with pytest.raises(OutputError, match="is also an input"):
        report.to_json(tmp_path / "train.csv", overwrite=True)
    meta = twinforge.Metadata.detect(train)
    meta.to_json(tmp_path / "meta.json")
    for metadata in (meta, meta.to_dict(), tmp_path / "meta.json"):
        report = twinforge.evaluate(train, fresh, metadata=metadata, parts=["fidelity"], progress=False)
        report.to_json(tmp_path / "scores.json", overwrite=True)
    with pytest.raises(OutputError, match="is also an input"):
        report.to_json(tmp_path / "meta.json", overwrite=True)


def test_same_seed_same_report_and_subsampling_is_reported(tables):
    train, holdout, fresh = tables
    caps = {"detection_rows": 200, "distance_rows": 300, "pair_rows": 400, "alpha_beta_rows": 100}
    a = twinforge.evaluate(train, fresh, holdout, target="bought", seed=7, caps=caps, progress=False)
    b = twinforge.evaluate(train, fresh, holdout, target="bought", seed=7, caps=caps, progress=False)
    assert a.to_json() == b.to_json()
    sub = a.to_dict()["subsampled"]
    assert sub["detection"]["rows_per_side"] == 200
    assert sub["column_pair_trends"]["real"] == {"rows": 400, "of": 500}
    assert sub["distances"]["synthetic"] == {"rows": 300, "of": 500}
    assert a.to_dict()["settings"]["caps"]["detection_rows"] == 200
    html = a.html()  # the report says it in words, not as raw JSON
    assert "200 per side (of real 500, synthetic 500)" in html and "real: 400 of 500" in html
    assert "rows_per_side" not in html.split("<h3>Subsampled")[1].split("</table>")[0]


def test_without_holdout_utility_and_holdout_privacy_are_skipped_with_a_note(tables):
    train, _, fresh = tables
    report = twinforge.evaluate(train, fresh, target="bought", progress=False)
    assert report.utility["tstr"] is None and "holdout" in report.utility["skipped"]
    assert report.privacy["dcr_share"] is None and report.privacy["mia_auc"] is None
    assert report.privacy["exact_copy_rate"] == 0.0
    assert any("utility skipped: it needs a holdout" in n for n in report.notes)
    assert "Skipped: no holdout was given" in report.html()


def test_shuffled_columns_keep_shapes_but_lose_trends_end_to_end(tables):
    train, _holdout, _ = tables
    report = twinforge.evaluate(train, shuffle_columns(train), parts=["fidelity"], progress=False)
    assert report.fidelity["column_shapes"] == 1.0
    assert report.fidelity["column_pair_trends"] < 0.75
    assert report.fidelity["detection_auc"] > 0.7
    assert report.utility == {} and report.privacy == {}


# ------------------------------------------------------------------------------------------ bad input
def test_column_sets_that_differ_are_all_named(tables):
    train, holdout, fresh = tables
    with pytest.raises(DataError) as info:
        twinforge.evaluate(train, fresh.drop(columns=["age"]).assign(extra=1), holdout.drop(columns=["spend"]))
    message = str(info.value)
    assert "synthetic lacks column(s) ['age']" in message
    assert "synthetic has column(s) ['extra']" in message
    assert "holdout lacks column(s) ['spend']" in message


def test_duplicate_columns_in_synthetic_are_named(tables):
    train, holdout, fresh = tables
    twice = pd.concat([fresh, fresh[["age"]]], axis=1)
    with pytest.raises(DataError, match=r"synthetic has duplicate column names \['age'\]"):
        twinforge.evaluate(train, twice, holdout, progress=False)


def test_kinds_that_differ_are_named(tables):
    train, holdout, fresh = tables
    with pytest.raises(DataError, match=r"synthetic: column 'income' is declared continuous but has dtype object"):
        twinforge.evaluate(train, fresh.assign(income="lots"), holdout, progress=False)


@pytest.mark.parametrize("which", ["real", "synthetic", "holdout"])
def test_empty_frames_are_named(tables, which):
    train, holdout, fresh = tables
    args = {"real": train, "synthetic": fresh, "holdout": holdout}
    args[which] = args[which].iloc[:0]
    with pytest.raises(DataError, match=f"^{which}: the DataFrame has no rows"):
        twinforge.evaluate(**args, progress=False)


def test_bad_arguments(tables):
    train, holdout, fresh = tables
    with pytest.raises(ParameterError, match="target 'nope' is not a column"):
        twinforge.evaluate(train, fresh, holdout, target="nope")
    with pytest.raises(ParameterError, match="sensitive column 'zzz' is not a column"):
        twinforge.evaluate(train, fresh, holdout, sensitive=["zzz"])
    with pytest.raises(DataError, match="target 'flat' is constant"):
        twinforge.evaluate(train.assign(flat=0), fresh.assign(flat=0), holdout.assign(flat=0), target="flat")
    with pytest.raises(ParameterError, match="unknown cap"):
        twinforge.evaluate(train, fresh, caps={"rows": 5})
    with pytest.raises(ParameterError, match="parts must name"):
        twinforge.evaluate(train, fresh, parts=["speed"])
    with pytest.raises(ParameterError, match="seed"):
        twinforge.evaluate(train, fresh, seed=-1)
    with pytest.raises(ParameterError, match="real must be a DataFrame or a path"):
        twinforge.evaluate(42, fresh)
    with pytest.raises(DataError, match=r"^synthetic: file not found"):
        twinforge.evaluate(train, "nowhere.csv")
    with pytest.raises(MetadataError, match="columns in the data but not in the metadata"):
        twinforge.evaluate(train, fresh, metadata=twinforge.Metadata.detect(train[["age", "income"]]))


def test_nan_and_constant_columns_do_not_crash():
    rng = np.random.default_rng(0)
    n = 200
    real = pd.DataFrame({"x": rng.normal(size=n), "k": 1.0, "c": "same", "y": rng.choice(["a", "b"], n)})
    real.loc[rng.random(n) < 0.3, "x"] = np.nan
    synth = real.sample(frac=1.0, random_state=1).reset_index(drop=True)
    synth["x"] = np.nan  # a generator that lost a column entirely
    report = twinforge.evaluate(real, synth, real.copy(), target="y", progress=False)
    assert report.fidelity["columns"]["x"]["shape"] == 0.0
    assert report.fidelity["columns"]["k"]["shape"] == 1.0
    json.loads(report.to_json())
    assert "<html" in report.html()


def test_progress_bar_goes_to_stderr(tables, capfd):
    train, _, fresh = tables
    twinforge.evaluate(train.iloc[:100], fresh.iloc[:100], parts=["fidelity"], progress=True)
    out, _ = capfd.readouterr()
    assert out == ""  # nothing on stdout: a progress bar is never mixed into piped output


def test_docstring_examples_run():
    for name in (
        "twinforge.evaluate",
        "twinforge.evaluate.fidelity",
        "twinforge.evaluate.utility",
        "twinforge.evaluate.privacy",
        "twinforge.evaluate.report",
    ):
        result = doctest.testmod(sys.modules[name], optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name


def test_evaluate_package_exports():
    package = sys.modules["twinforge.evaluate"]
    for name in package.__all__:
        assert hasattr(package, name)
    assert twinforge.evaluate is package.evaluate
    assert "evaluate" in twinforge.__all__ and "EvaluationReport" in twinforge.__all__
