"""The contract every registered model passes: one suite, parametrised over ``available_models()``."""

import numpy as np
import pandas as pd
import pytest

import twinforge
from twinforge import DataError, MetadataError, ModelFileError, NotFittedError, ParameterError
from twinforge.models import CHUNK_ROWS

from .conftest import make_mixed

MODELS = twinforge.available_models(kind="table")  # sequence models: tests/test_sequence.py
# Small settings so that every model fits in a few seconds in tests.
FAST = {
    "auto": {"epochs": 3, "progress": False},
    "copula": {},
    "mst": {"iters": 200},
    "ctgan": {"epochs": 30, "batch_size": 100, "pac": 5, "width": 64, "learning_rate": 1e-3, "progress": False},
    "tvae": {"epochs": 30, "batch_size": 100, "width": 64, "latent_dim": 32, "progress": False},
    "ddpm": {"epochs": 30, "batch_size": 100, "width": 64, "depth": 2, "steps": 8, "progress": False},
}


def new(name, seed=0):
    return twinforge.create(name, seed=seed, **FAST.get(name, {}))


@pytest.fixture(scope="module", params=MODELS)
def fitted(request):
    data = make_mixed()
    return request.param, new(request.param).fit(data), data


def test_every_model_has_fast_test_settings():
    assert set(MODELS) <= set(FAST), "add the new model's fast settings to FAST"


def test_fit_returns_self_and_records_training_shape():
    for name in MODELS:
        model = new(name)
        data = make_mixed(100)
        assert model.fit(data) is model
        assert model.fit_info_["rows"] == 100 and model.fit_info_["columns"] == data.shape[1]


def test_sample_keeps_columns_order_dtypes_and_categories(fitted):
    _, model, data = fitted
    out = model.sample(300)
    assert len(out) == 300
    assert list(out.columns) == list(data.columns)
    assert out.dtypes.to_dict() == data.dtypes.to_dict()
    assert out["tier"].cat.categories.tolist() == data["tier"].cat.categories.tolist()
    assert set(out["city"].dropna()) <= set(data["city"].dropna())
    assert out.index.equals(pd.RangeIndex(300))


def test_bounds_integers_and_missing_rates(fitted):
    _, model, data = fitted
    out = model.sample(4000, seed=1)
    assert out["age"].between(data["age"].min(), data["age"].max()).all()
    assert (out["income"].dropna() == out["income"].dropna().round(2)).all()
    assert out["joined"].between(data["joined"].min(), data["joined"].max()).all()
    for col in ("income", "visits", "city"):
        assert out[col].isna().mean() == pytest.approx(data[col].isna().mean(), abs=0.03), col
    assert out["customer_id"].is_unique


def test_same_seed_same_output_and_other_seed_differs(fitted):
    name, model, data = fitted
    a = model.sample(200, seed=7)
    pd.testing.assert_frame_equal(a, model.sample(200, seed=7))
    assert not a.equals(model.sample(200, seed=8))
    again = new(name).fit(data)  # same seed and data: same model
    pd.testing.assert_frame_equal(a, again.sample(200, seed=7))
    pd.testing.assert_frame_equal(model.sample(50), again.sample(50))  # no sample seed: the model's seed


def test_chunked_sampling_equals_one_call(fitted):
    _, model, _ = fitted
    n = CHUNK_ROWS + 10
    whole = model.sample(n, seed=3)
    chunks = list(model.sample_chunks(n, seed=3))
    assert [len(c) for c in chunks] == [CHUNK_ROWS, 10]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    assert whole["customer_id"].is_unique


def test_save_load_round_trip_is_exact(fitted, tmp_path):
    _name, model, _ = fitted
    model.save(tmp_path / "m")
    loaded = twinforge.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.sample(500, seed=11), model.sample(500, seed=11))
    assert loaded.metadata_ == model.metadata_
    loaded.save(tmp_path / "m2")  # and a loaded model saves again
    pd.testing.assert_frame_equal(twinforge.load(tmp_path / "m2").sample(50, seed=1), model.sample(50, seed=1))


def test_saved_model_is_not_a_pickle(fitted, tmp_path):
    _, model, _ = fitted
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.npz"]
    with np.load(tmp_path / "m" / "weights.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


@pytest.mark.parametrize("name", MODELS)
def test_bad_input_raises_documented_errors(name, tmp_path):
    model = new(name)
    with pytest.raises(NotFittedError, match="call fit first"):
        model.sample(5)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "x")
    with pytest.raises(DataError, match="no rows"):
        model.fit(make_mixed().iloc[:0])
    with pytest.raises(DataError, match="entirely null"):
        model.fit(make_mixed().assign(empty=np.nan))
    bad_meta = twinforge.Metadata.detect(make_mixed()).update_column("city", kind="integer")
    with pytest.raises(MetadataError, match="'city' is declared integer"):
        model.fit(make_mixed(), metadata=bad_meta)
    model.fit(make_mixed(60))
    for n in (0, -3, 2.5, True, "10"):
        with pytest.raises(ParameterError, match="positive integer"):
            model.sample(n)
    with pytest.raises(ParameterError, match="seed"):
        model.sample(5, seed=-1)


def test_create_rejects_unknown_names_and_parameters():
    with pytest.raises(ParameterError, match=r"available models: .*copula"):
        twinforge.create("nosuch")
    with pytest.raises(ParameterError, match="no parameter 'wobble'"):
        twinforge.create("copula", wobble=3)


def test_load_refuses_foreign_model_names(fitted, tmp_path):
    import json

    _, model, _ = fitted
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    doc["model"] = "from-the-future"
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="does not know"):
        twinforge.load(tmp_path / "m")


# ------------------------------------------------------------------------------ conditional models
CONDITIONAL = [m for m in MODELS if twinforge.models.get_class(m).supports_conditions]


@pytest.fixture(scope="module", params=CONDITIONAL)
def conditional(request):
    data = make_mixed()
    return request.param, new(request.param).fit(data), data


def test_conditions_are_honoured_exactly(conditional):
    _, model, data = conditional
    out = model.sample(
        400,
        seed=2,
        conditions={"city": ["Rome", "Lima"], "tier": "gold", "age": (40, 60), "joined": (None, "2021-06-30")},
    )
    assert set(out["city"]) <= {"Rome", "Lima"} and (out["tier"] == "gold").all()
    assert out["age"].between(40, 60).all() and (out["joined"] <= pd.Timestamp("2021-06-30")).all()
    assert list(out.columns) == list(data.columns) and out.dtypes.to_dict() == data.dtypes.to_dict()
    missing = model.sample(100, seed=2, conditions={"income": None})
    assert missing["income"].isna().all()


def test_seed_data_rebalance_and_impute(conditional):
    _, model, data = conditional
    partial = pd.DataFrame({"age": [20, 80, 50], "city": ["Pune", None, "Oslo"]})
    out = model.sample(seed_data=partial, seed=3)
    assert out["age"].tolist() == [20, 80, 50] and out.loc[[0, 2], "city"].tolist() == ["Pune", "Oslo"]
    mix = model.sample(1000, seed=3, rebalance={"tier": {"bronze": 0.2, "silver": 0.2, "gold": 0.6}})
    assert mix["tier"].value_counts().to_dict() == {"gold": 600, "bronze": 200, "silver": 200}
    filled = model.impute(data.head(200), seed=4)
    assert filled[["income", "visits", "city"]].notna().all().all()
    kept = data.head(200)["income"].notna()
    assert filled.loc[kept, "income"].equals(data.head(200).loc[kept, "income"])
    pd.testing.assert_frame_equal(filled, model.impute(data.head(200), seed=4))
