"""The neural models (ctgan, tvae, ddpm): conditions, what they learn, training control, weights.

The shared contract (shapes, dtypes, save/load, seeding, errors) is in test_contract.py; this file checks what is
particular to these models, with small networks trained for a few seconds.
"""

import importlib
import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import twinforge
from twinforge.cli import app
from twinforge.models._nn import state_from_arrays, state_to_arrays

from .conftest import make_mixed

NEURAL = ["ctgan", "tvae", "ddpm"]
# Enough training (a few seconds each) to learn income ~ 1000 + 40 * age in make_mixed.
TRAINED = {
    "ctgan": {"epochs": 60, "batch_size": 100, "pac": 5, "width": 128, "learning_rate": 1e-3, "validation_share": 0},
    "tvae": {"epochs": 200, "batch_size": 100, "validation_share": 0},
    "ddpm": {"epochs": 60, "batch_size": 100, "width": 128, "depth": 2, "steps": 20, "validation_share": 0},
}
# Just enough to run.
QUICK = {
    "ctgan": {"epochs": 5, "batch_size": 100, "pac": 5, "width": 32, "min_epochs": 0},
    "tvae": {"epochs": 5, "batch_size": 100, "width": 32, "latent_dim": 8},
    "ddpm": {"epochs": 5, "batch_size": 100, "width": 32, "depth": 1, "steps": 4},
}


def quick(name, **params):
    return twinforge.create(name, seed=0, progress=False, **{**QUICK[name], **params})


@pytest.fixture(scope="module", params=NEURAL)
def trained(request):
    data = make_mixed(1000)
    model = twinforge.create(request.param, seed=0, progress=False, **TRAINED[request.param]).fit(data)
    return request.param, model, data


# ------------------------------------------------------------------------------------------ conditions
def test_conditions_are_honoured_exactly(trained):
    _, model, _ = trained
    joined = (pd.Timestamp("2020-06-01"), pd.Timestamp("2021-01-01"))
    out = model.sample(
        600,
        seed=1,
        conditions={
            "city": "Pune",
            "tier": ["gold", "silver"],
            "age": (30, 40),
            "income": None,
            "active": True,
            "joined": joined,
        },
    )
    assert (out["city"] == "Pune").all()
    assert out["tier"].isin(["gold", "silver"]).all()
    assert out["age"].between(30, 40).all()
    assert out["income"].isna().all()
    assert out["active"].all()
    assert out["joined"].between(*joined).all()
    out = model.sample(300, seed=2, conditions={"age": 50, "income": 3000.25, "visits": None, "city": None})
    assert (out["age"] == 50).all() and (out["income"] == 3000.25).all()
    assert out["visits"].isna().all() and out["city"].isna().all()
    out = model.sample(300, seed=3, conditions={"visits": (2, 4), "city": ["Lima", None]})
    assert out["visits"].between(2, 4).all() and out["visits"].notna().all()
    assert set(out["city"].fillna("<NA>")) <= {"Lima", "<NA>"}


def test_a_condition_moves_the_other_columns(trained):
    name, model, data = trained
    old = model.sample(1500, seed=4, conditions={"age": (70, 89)})
    young = model.sample(1500, seed=4, conditions={"age": (18, 35)})
    gap = old["income"].mean() - young["income"].mean()
    real_gap = data.loc[data["age"] >= 70, "income"].mean() - data.loc[data["age"] <= 35, "income"].mean()
    # the real gap is about 2,100; a GAN learns the dependence more slowly than the others
    assert gap > (0.15 if name == "ctgan" else 0.5) * real_gap, (name, gap, real_gap)


def test_seed_data_keeps_given_cells_and_impute_fills_holes(trained):
    _, model, data = trained
    seed_rows = pd.DataFrame({"age": [20, 85, 50], "city": ["Oslo", None, "Lima"]})
    out = model.sample(seed_data=seed_rows, seed=5)
    assert out["age"].tolist() == [20, 85, 50]
    assert out["city"].iloc[0] == "Oslo" and out["city"].iloc[2] == "Lima"  # None in seed data: generated
    holes = data.head(200).copy()
    holes.loc[::3, "age"] = np.nan
    holes["age"] = holes["age"].astype("Int64")
    filled = model.impute(holes, seed=6)
    learned = ["age", "income", "visits", "city", "tier", "active", "joined"]
    assert filled["age"].notna().all() and filled["income"].notna().all() and filled["city"].notna().all()
    kept = holes[learned].notna()
    for col in learned:
        assert (filled.loc[kept[col], col] == holes.loc[kept[col], col]).all(), col
    assert filled["age"].between(18, 89).all()


def test_temperature_sharpens_and_flattens(trained):
    _, model, _ = trained
    cold = model.sample(3000, seed=7, temperature=0.3)
    hot = model.sample(3000, seed=7, temperature=1.5)
    assert cold["city"].value_counts(normalize=True).iloc[0] > hot["city"].value_counts(normalize=True).iloc[0]


def test_conditional_sampling_is_seeded_and_survives_save_load(trained, tmp_path):
    _, model, _ = trained
    cond = {"tier": "gold", "age": (40, 60)}
    a = model.sample(400, seed=8, conditions=cond)
    pd.testing.assert_frame_equal(a, model.sample(400, seed=8, conditions=cond))
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(a, twinforge.load(tmp_path / "m").sample(400, seed=8, conditions=cond))


# ------------------------------------------------------------------------------------------ what is learned
@pytest.mark.parametrize("name", NEURAL)
def test_missing_rates_match_and_no_category_is_invented(name):
    data = make_mixed(600)
    data["tier"] = data["tier"].cat.add_categories(["platinum"])  # declared, never seen
    data["active"] = data["active"].astype("boolean")
    data.loc[data.index[::10], "active"] = pd.NA
    # A GAN's marginals settle at a small learning rate (the paper's), its dependencies come faster at a large one;
    # a VAE keeps rates closest with the plain ELBO (loss_factor 1; the default 2 favours rare dependencies).
    params = {"ctgan": {"learning_rate": 2e-4}, "tvae": {"loss_factor": 1.0, "learning_rate": 1e-3}}.get(name, {})
    params = {**TRAINED[name], **params}
    model = twinforge.create(name, seed=0, progress=False, **params).fit(data)
    out = model.sample(5000, seed=1)
    assert "platinum" not in set(out["tier"].dropna())
    assert set(out["city"].dropna()) <= set(data["city"].dropna())
    for col in ("income", "visits", "city", "active"):
        assert out[col].isna().mean() == pytest.approx(data[col].isna().mean(), abs=0.03), col


@pytest.mark.parametrize("name", NEURAL)
def test_a_declared_but_unseen_level_is_generated_only_when_asked_for(name):
    data = make_mixed(200)
    data["tier"] = data["tier"].cat.add_categories(["platinum"])
    model = quick(name).fit(data)
    assert "platinum" not in set(model.sample(2000, seed=0)["tier"])
    assert (model.sample(50, seed=0, conditions={"tier": ["platinum"]})["tier"] == "platinum").all()
    assert (model.sample(50, seed=0, conditions={"tier": "platinum"})["tier"] == "platinum").all()


def test_ctgan_learns_a_rare_category_by_training_by_sampling():
    rng = np.random.default_rng(0)
    n = 2000
    group = rng.choice(["common", "usual", "rare"], n, p=[0.6, 0.385, 0.015])
    value = np.where(group == "rare", 10.0, 0.0) + rng.normal(0, 1, n)
    data = pd.DataFrame({"group": group, "value": value})
    model = twinforge.create("ctgan", seed=0, progress=False, **TRAINED["ctgan"]).fit(data)
    out = model.sample(5000, seed=1)
    share = (out["group"] == "rare").mean()
    assert 0.003 < share < 0.05
    rare = model.sample(500, seed=2, conditions={"group": "rare"})
    assert rare["value"].median() > 5  # the rare category's own values, not the common ones'


def test_ctgan_redraws_the_rows_of_a_rare_level_conditioned_on_it(tmp_path):
    """Rows whose rarest discrete level is below ``rare_share`` (and seen on 100 or more training rows) are generated
    again, conditioned on that level; a level seen on fewer rows is not."""
    rng = np.random.default_rng(0)
    n = 4000
    group = rng.choice(["common", "usual", "rare"], n, p=[0.6, 0.37, 0.03])
    data = pd.DataFrame({"group": group, "flag": rng.choice(["a", "b"], n), "value": rng.normal(0, 1, n)})
    model = quick("ctgan").fit(data)
    assert model.rare_share_ == 0.05
    calls = []

    def spy(m):
        rows = m._rows

        def wrapped(which, cats, cons, rng, temperature):
            out = rows(which, cats, cons, rng, temperature)
            calls.append((which.copy(), cats.copy(), cons.codes.copy(), out[0].copy()))
            return out

        m._rows = wrapped
        return rows

    rows = spy(model)
    out = model.sample(3000, seed=1)
    (which1, cats1, _, codes1), (which2, cats2, fixed2, codes2) = calls
    span = next(c["span"] for c in model.encoding_.columns_ if c["name"] == "group")
    i = model.cond_.spans.index(span)
    rare = int(np.argmin(model.cond_.probs[i]))
    first = np.flatnonzero(codes1[:, span] == rare)
    again = first[(which1[first] != i) | (cats1[first] != rare)]  # rows conditioned on it already keep their draw
    assert len(again) == len(which2) > 0
    assert (which2 == i).all() and (cats2 == rare).all()
    assert (fixed2[:, span] == rare).all() and (codes2[:, span] == rare).all()
    assert (out["group"] == "rare").sum() == len(first)  # the level keeps its count
    # the calibration is fitted on the rows as sampled: the rare level keeps its training share
    assert abs((out["group"] == "rare").mean() - (data["group"] == "rare").mean()) < 0.01
    small = quick("ctgan").fit(data.iloc[:2000])  # about 60 rare rows: too few to redraw on
    spy(small)
    calls.clear()
    small.sample(1000, seed=1)
    assert len(calls) == 1
    # off: one pass, as before; a model saved before the option samples without it
    model._rows = rows
    model.save(tmp_path / "m")
    model.rare_share_ = 0.0
    off = model.sample(3000, seed=1)
    assert not off.equals(out)
    path = tmp_path / "m" / "model.json"
    doc = json.loads(path.read_text())
    del doc["state"]["rare_share"]
    path.write_text(json.dumps(doc))
    old = twinforge.load(tmp_path / "m")
    assert old.rare_share_ == 0.0 and old.sample(3000, seed=1).equals(off)
    with pytest.raises(twinforge.ParameterError, match="rare_share"):
        quick("ctgan", rare_share=1.5).fit(data)


def test_ctgan_calibrates_its_marginals():
    """Logit biases fitted after training bring an undertrained generator's category rates to the data's."""
    data = make_mixed(1000)
    model = quick("ctgan").fit(data)
    real = data["tier"].value_counts(normalize=True)

    def tv(out):
        return 0.5 * (out["tier"].value_counts(normalize=True).reindex(real.index, fill_value=0) - real).abs().sum()

    calibrated = tv(model.sample(4000, seed=0))
    model.span_bias_ = [np.zeros_like(b) for b in model.span_bias_]
    assert calibrated < 0.03 < tv(model.sample(4000, seed=0))


def test_few_valued_numbers_become_point_modes():
    """A 0/1 flag or a small count is one point mode per value, so its frequencies are learned like a category's."""
    from twinforge.models._tabular_nn import fit_vgmm

    x = np.r_[np.zeros(90), np.ones(810), np.full(100, 3.0)]
    weights, means, stds = fit_vgmm(x, 10, np.random.default_rng(0))
    assert means.tolist() == [0.0, 1.0, 3.0] and np.allclose(weights, [0.09, 0.81, 0.1]) and (stds < 1e-5).all()
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"flag": (rng.random(1000) < 0.9).astype("int64"), "value": rng.normal(0, 1, 1000)})
    out = quick("ctgan").fit(data).sample(4000, seed=0)
    assert set(out["flag"].unique()) == {0, 1} and abs(out["flag"].mean() - data["flag"].mean()) < 0.03


# ------------------------------------------------------------------------------------------ training control
@pytest.mark.parametrize("name", NEURAL)
def test_max_minutes_stops_training(name):
    model = quick(name, epochs=10_000, max_minutes=1e-5, validation_share=0).fit(make_mixed(100))
    assert model.training_["stopped"] == "time_budget" and model.training_["epochs"] == 1


@pytest.mark.parametrize("name", NEURAL)
def test_early_stopping_on_held_out_rows(name):
    model = quick(name, epochs=10_000, patience=2, validation_share=0.2).fit(make_mixed(200))
    assert model.training_["stopped"] == "early_stopping"
    assert model.training_["best_epoch"] == model.training_["epochs"] - 2


@pytest.mark.parametrize("name", NEURAL)
def test_early_stopping_stops_on_a_plateau_and_restores_the_best_weights(name, monkeypatch):
    """tvae and ddpm hold rows out by default (ctgan when asked: its module docstring says why it is off by
    default) and stop on a plateau of their validation loss.

    The held-out loss itself is computed as usual; the spy replaces the value the loop sees by one that improves
    until ``best`` and is flat after it, and snapshots the weights at every epoch. Training must stop ``patience``
    epochs after ``best`` and end with ``best``'s weights, not the last epoch's.
    """
    cls = twinforge.models.get_class(name)
    module = importlib.import_module(cls.__module__)
    real_loop, snapshots = module.train_loop, []
    patience = 3
    best = int(cls().min_epochs if "min_epochs" in cls._param_names() else 0) + 4

    def spy(**kw):
        validate, net = kw["validate"], kw["module"]
        assert validate is not None, "early stopping is off"

        def scripted() -> float:
            validate()
            snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            epoch = len(snapshots)
            return 1.0 / epoch if epoch <= best else 1.0

        spy.net = net
        return real_loop(**{**kw, "validate": scripted})

    monkeypatch.setattr(module, "train_loop", spy)
    quick_params = {k: v for k, v in QUICK[name].items() if k not in ("min_epochs", "validation_share")}
    if name == "ctgan":
        quick_params["validation_share"] = 0.1
    model = twinforge.create(name, seed=0, progress=False, **{**quick_params, "epochs": 1000, "patience": patience})
    model.fit(make_mixed(300))
    assert model.training_["stopped"] == "early_stopping"
    assert model.training_["best_epoch"] == best and model.training_["epochs"] == best + patience
    final = spy.net.state_dict()
    assert all(torch.equal(final[k], snapshots[best - 1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[-1][k]) for k in final)


@pytest.mark.parametrize("name", NEURAL)
def test_a_key_like_column_is_drawn_not_learned(name, tmp_path):
    """A categorical column of unique codes holds nothing to learn: drawn from its levels, conditions honoured."""
    data = make_mixed(300)
    data["code"] = [f"{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}X" for i in range(300)]
    model = quick(name).fit(data, twinforge.Metadata.detect(data).update_column("code", kind="categorical"))
    assert list(model.keylike_) == ["code"]
    out = model.sample(200, seed=0)
    assert out["code"].is_unique and set(out["code"]) <= set(data["code"])
    assert (model.sample(5, seed=0, conditions={"code": "CBX"})["code"] == "CBX").all()
    assert set(model.sample(20, seed=0, conditions={"code": ["ABX", "BAX"]})["code"]) <= {"ABX", "BAX"}
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(50, seed=3).equals(model.sample(50, seed=3))


def test_ctgan_learns_a_many_level_column_as_its_common_levels_and_draws_the_rare_ones_given_a_parent(tmp_path):
    """Over ``max_levels`` levels: the network sees the commonest ones plus "other"; rare levels keep their parent."""
    rng = np.random.default_rng(0)
    n = 600
    carrier = rng.choice(["AA", "BB", "CC"], n)
    # each tail number belongs to one carrier; 6 common tails, 120 rare ones (seen 2-3 times)
    tails = [f"{c}{i:03d}" for c in ("AA", "BB", "CC") for i in range(42)]
    common = rng.random(n) < 0.4
    tail = np.where(common, np.char.add(carrier, rng.integers(0, 2, n).astype(str).astype("<U3")), "")
    for i in np.flatnonzero(~common):
        tail[i] = rng.choice([t for t in tails if t.startswith(carrier[i])][2:])
    data = pd.DataFrame({"carrier": carrier, "tail": tail, "x": rng.normal(size=n)})
    meta = twinforge.Metadata.detect(data).update_column("tail", kind="categorical")
    model = quick("ctgan", max_levels=6).fit(data, meta)
    spec = model.rare_["tail"]
    assert spec["parent"] == "carrier" and len(spec["keep"]) == 6
    assert model.encoding_.span_sizes_[[c["name"] for c in model.encoding_.columns_].index("tail")] == 7
    out = model.sample(2000, seed=0)
    rare_out = out[~out["tail"].isin(pd.Series(tail).value_counts().index[:6])]
    assert len(rare_out) > 500 and set(rare_out["tail"]) <= set(tail)  # rare levels generated, none invented
    assert (rare_out["tail"].str[:2] == rare_out["carrier"]).all()  # each drawn given its row's carrier
    rare_level = pd.Series(tail).value_counts().index[-1]
    assert (model.sample(20, seed=1, conditions={"tail": rare_level})["tail"] == rare_level).all()
    allowed = [rare_level, pd.Series(tail).value_counts().index[0]]
    assert set(model.sample(50, seed=1, conditions={"tail": allowed})["tail"]) <= set(allowed)
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(50, seed=3).equals(model.sample(50, seed=3))
    assert not quick("ctgan", max_levels=None).fit(data, meta).rare_
    with pytest.raises(twinforge.ParameterError, match="max_levels"):
        quick("ctgan", max_levels=1).fit(data, meta)


def test_rare_levels_pick_a_parent_only_when_it_predicts_them():
    from types import SimpleNamespace

    from twinforge.models._tabular_nn import collapse_rare, expand_rare, fit_rare_levels

    rng = np.random.default_rng(0)
    n = 3000
    owner = rng.integers(0, 4, n)  # level l of "many" belongs to owner l % 4
    many = 4 * rng.integers(0, 200, n) + owner
    noise = rng.integers(0, 4, n)  # unrelated to "many"
    arrays = {"many": many, "owner": owner, "noise": noise}
    transforms = {"many": SimpleNamespace(discrete=True, n_levels=800)} | {
        k: SimpleNamespace(discrete=True, n_levels=4) for k in ("owner", "noise")
    }
    spec = fit_rare_levels(arrays, transforms, 50, private=False)
    assert list(spec) == ["many"] and spec["many"]["parent"] == "owner" and len(spec["many"]["keep"]) == 50
    assert fit_rare_levels(arrays, transforms, 50, private=True) == {}
    alone = fit_rare_levels({"many": many, "noise": noise}, transforms, 50, private=False)
    assert alone["many"]["parent"] is None  # "noise" predicts nothing: rare levels drawn by frequency alone
    collapsed = collapse_rare(arrays, spec)
    assert collapsed["many"].max() == 50 and (collapsed["many"] == 50).mean() > 0.7
    back = expand_rare(dict(collapsed), spec, np.random.default_rng(1), None)["many"]
    kept = collapsed["many"] < 50
    np.testing.assert_array_equal(back[kept], many[kept])
    assert (back[~kept] % 4 == owner[~kept]).all() and not np.isin(back[~kept], spec["many"]["keep"]).any()


@pytest.mark.parametrize("name", NEURAL)
def test_bad_parameters_are_refused(name):
    with pytest.raises(twinforge.ParameterError, match="epochs"):
        quick(name, epochs=0).fit(make_mixed(50))
    with pytest.raises(twinforge.ParameterError, match="width"):
        quick(name, width=-1).fit(make_mixed(50))
    with pytest.raises(twinforge.ParameterError, match="device"):
        quick(name, device="abacus").fit(make_mixed(50))


@pytest.mark.parametrize("name", NEURAL)
def test_degenerate_tables(name):
    out = quick(name).fit(pd.DataFrame({"a": [1.5], "b": ["x"]})).sample(10, seed=0)
    assert (out["a"] == 1.5).all() and (out["b"] == "x").all()
    ids = quick(name).fit(pd.DataFrame({"row_id": np.arange(30)})).sample(40, seed=0)["row_id"]
    assert ids.is_unique and len(ids) == 40


# ------------------------------------------------------------------------------------------ weights
def _networks(model):
    return {
        "ctgan": lambda m: [m.generator_],
        "tvae": lambda m: [m.encoder_, m.decoder_],
        "ddpm": lambda m: [m.denoiser_],
    }[model.name](model)


@pytest.mark.parametrize("name", NEURAL)
def test_networks_are_dp_ready_and_weights_round_trip(name):
    """No BatchNorm (Opacus cannot wrap it), and the weights are plain arrays that load back exactly."""
    model = quick(name).fit(make_mixed(100))
    for net in _networks(model):
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
        arrays = state_to_arrays(net)
        assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
        fresh = _fresh_copy(net)
        state_from_arrays(fresh, arrays)
        for key, value in fresh.state_dict().items():
            assert torch.equal(value, net.state_dict()[key]), key


def _fresh_copy(net):
    import copy

    fresh = copy.deepcopy(net)
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    return fresh


# ------------------------------------------------------------------------------------------ command line
def test_cli_fits_a_neural_model_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_mixed(40).drop(columns=["email"]).to_csv("data.csv", index=False)
    result = CliRunner().invoke(app, ["fit", "data.csv", "--model", "tvae", "--out", "m", "--seed", "0"])
    assert result.exit_code == 0, result.output
    model = twinforge.load("m")
    assert model.name == "tvae" and model.get_params()["max_minutes"] is None
    assert len(model.sample(20, seed=0)) == 20


def test_cli_param_sets_model_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_mixed(40).drop(columns=["email"]).to_csv("data.csv", index=False)
    args = ["fit", "data.csv", "--model", "tvae", "--out", "m", "--seed", "0"]
    params = ["--param", "epochs=3", "--param", "learning_rate=0.01", "-p", "progress=false", "-p", "device=cpu"]
    result = CliRunner().invoke(app, [*args, *params])
    assert result.exit_code == 0, result.output
    got = twinforge.load("m").get_params()
    assert got["epochs"] == 3 and got["learning_rate"] == 0.01 and got["progress"] is False and got["device"] == "cpu"
    assert twinforge.load("m").training_["epochs"] <= 3


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        (["--param", "epoch=3"], ["'epoch'", "no such parameter", "epochs", "batch_size"]),
        (["--param", "epochs"], ["NAME=VALUE"]),
        (["--param", "seed=1"], ["--seed"]),
        (["--param", "epochs=3", "--param", "epochs=4"], ["twice"]),
        (["--param", "epochs=0"], ["epochs must be a positive integer"]),
        (["--param", "max_minutes=1", "--max-minutes", "2"], ["max_minutes given twice"]),
    ],
)
def test_cli_param_errors_exit_2_with_one_message(tmp_path, monkeypatch, params, needles):
    monkeypatch.chdir(tmp_path)
    make_mixed(40).drop(columns=["email"]).to_csv("data.csv", index=False)
    result = CliRunner().invoke(app, ["fit", "data.csv", "--model", "ctgan", "--out", "m", *params])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not (tmp_path / "m").exists()
    for needle in needles:
        assert needle in result.output, result.output


# ------------------------------------------------------------------------------------------ speed paths
def test_training_precision_is_bfloat16_only_where_native_and_allowed():
    from twinforge.models._nn import native_bf16, training_precision

    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)
    with training_precision(cpu, enabled=False):
        assert layer(x).dtype == torch.float32  # DP: Opacus needs the layers' own dtype
    with training_precision(cpu):
        assert layer(x).dtype == (torch.bfloat16 if native_bf16(cpu) else torch.float32)
    assert not native_bf16(torch.device("meta"))


def test_padded_cross_entropies_equal_the_per_column_loop():
    """tvae's and ddpm's one-shot cross-entropies over padded spans give the per-span loop's sums."""
    from torch.nn import functional as F

    from twinforge.models.diffusion import Denoiser

    gen = torch.Generator().manual_seed(0)
    net = Denoiser(2, [3, 1, 5], width=8, depth=1)
    out = torch.randn(7, 2 + 9, generator=gen)
    tokens = torch.stack([torch.randint(0, k, (7,), generator=gen) for k in (3, 1, 5)], dim=1)
    rows, cols = torch.arange(7).repeat_interleave(3), torch.arange(3).repeat(7)
    logits = net.token_logits(out, rows, cols).reshape(7, 3, -1)
    padded = torch.logsumexp(logits, 2) - logits.gather(2, tokens[:, :, None]).squeeze(2)
    starts = [2, 5, 6]
    loop = torch.stack(
        [
            F.cross_entropy(out[:, a : a + k], tokens[:, j], reduction="none")
            for j, (a, k) in enumerate(zip(starts, (3, 1, 5), strict=True))
        ],
        dim=1,
    )
    assert torch.allclose(padded, loop, atol=1e-5)
    # the input one-hots: one scatter equals the concatenated one-hots (mask state included)
    x = torch.randn(7, 2, generator=gen)
    masked = tokens.clone()
    masked[0, 2] = 5  # token 2's mask state
    hot = torch.cat([x] + [F.one_hot(masked[:, j], k + 1).float() for j, k in enumerate((3, 1, 5))], dim=1)
    t = torch.rand(7, generator=gen)
    with torch.no_grad():
        assert torch.allclose(net(x, masked, t), net.body(net.proj(hot) + net.time(_embed(t))), atol=1e-6)


@pytest.mark.parametrize("wide", [False, True])
def test_tvae_loss_equals_the_per_span_negative_elbo(wide):
    """Loss and gradients equal a loop of one cross-entropy per span; with ``wide``, a 40-level column is a span of
    its own softmax (``vae._WIDE_SPAN``) beside the narrow spans' shared one."""
    from torch.nn import functional as F

    def table(n, seed):
        data = make_mixed(n, seed=seed)
        if wide:
            data["code"] = [f"c{i}" for i in np.random.default_rng(seed).integers(0, 40, n)]
        return data

    model = quick("tvae", epochs=1).fit(table(200, 0))
    enc = model.encoding_
    assert (max(enc.span_sizes_) >= 32) == wide == bool(model._layout(torch.device("cpu"))["wide"])
    arrays = model.transformer_.transform(table(30, 3))
    codes, scalars = enc.encode({c["name"]: arrays[c["name"]] for c in enc.columns_}, None)
    x, codes_t, scalars_t, present = model._tensors(codes, scalars)
    params = list(model.encoder_.parameters()) + list(model.decoder_.parameters())
    torch.manual_seed(0)
    got = model._loss(x, codes_t, scalars_t, present)
    got_grads = torch.autograd.grad(got, params)
    torch.manual_seed(0)
    mu, logvar = model.encoder_(x)
    raw = model.decoder_(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
    rec = sum(
        F.cross_entropy(raw[:, a : a + k], codes_t[:, s], reduction="sum")
        for s, (a, k) in enumerate(zip(enc.span_starts_, enc.span_sizes_, strict=True))
    )
    sigma = model.decoder_.sigma()
    mean = torch.tanh(raw[:, torch.as_tensor(enc.scalar_pos_)])
    rec = rec + ((0.5 * ((scalars_t - mean) / sigma) ** 2 + sigma.log()) * present).sum()
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
    want = (model.loss_factor * rec + kl) / len(x)
    assert torch.allclose(got, want, rtol=1e-5)
    for g, w in zip(got_grads, torch.autograd.grad(want, params), strict=True):
        assert torch.allclose(g, w, rtol=1e-4, atol=1e-6)


def test_tvae_reparameterisation_gradient_is_autograds_to_the_bit():
    """The hand-written backward of z = mu + eps exp(logvar / 2) and the KL gives autograd's numbers exactly, the
    clamp of the log variance included (entries beyond +-10 get no gradient)."""
    from twinforge.models.vae import _Reparameterise

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(64, 16, generator=gen) * 6  # some log variances beyond +-10
    eps, g_z = torch.randn(64, 8, generator=gen), torch.randn(64, 8, generator=gen)
    a = h.clone().requires_grad_()
    z, kl = _Reparameterise.apply(a, eps)
    ((z * g_z).sum() + 0.3 * kl).backward()
    b = h.clone().requires_grad_()
    mu, logvar = b[:, :8], b[:, 8:].clamp(-10.0, 10.0)
    z_ref = mu + eps * (0.5 * logvar).exp()
    kl_ref = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
    ((z_ref * g_z).sum() + 0.3 * kl_ref).backward()
    assert torch.equal(z, z_ref) and torch.equal(kl, kl_ref) and torch.equal(a.grad, b.grad)
    assert (h[:, 8:].abs() > 10).any() and (a.grad[:, 8:][h[:, 8:].abs() > 10] == 0).all()


def _embed(t):
    from twinforge.models.diffusion import timestep_embedding

    return timestep_embedding(t)


def test_ctgan_lazy_gradient_penalty():
    """The penalty every k steps (weighted k) trains, is seeded, and 1 (WGAN-GP as published) still works."""
    data = make_mixed(200)
    a = quick("ctgan", penalty_every=3).fit(data).sample(50, seed=1)
    b = quick("ctgan", penalty_every=3).fit(data).sample(50, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert len(quick("ctgan", penalty_every=1).fit(data).sample(20, seed=0)) == 20
    with pytest.raises(twinforge.ParameterError, match="penalty_every"):
        quick("ctgan", penalty_every=0).fit(data)


def test_value_map_moves_generated_values_onto_the_real_marginal_and_keeps_ranks():
    from twinforge.models._request import SampleRequest
    from twinforge.models._tabular_nn import apply_value_map, fit_value_map

    rng = np.random.default_rng(0)
    real = {"x": rng.gamma(2.0, 10.0, 4000), "few": rng.integers(0, 3, 4000).astype(float)}
    fake = {"x": np.clip(rng.normal(15, 12, 4000), 0, None), "few": rng.integers(0, 3, 4000).astype(float)}
    fake["x"][:50] = np.nan
    vmap = fit_value_map(real, fake, ["x", "few"])
    assert set(vmap) == {"x"}  # a few-valued column is learned as categories: left alone
    out = apply_value_map({k: v.copy() for k, v in fake.items()}, vmap, None, np.random.default_rng(1))
    assert np.isnan(out["x"][:50]).all()
    got = out["x"][50:]
    assert np.abs(np.quantile(got, [0.1, 0.5, 0.9]) - np.quantile(real["x"], [0.1, 0.5, 0.9])).max() < 1.5
    assert (np.mean(got == got.min()) < 0.01) and np.mean(fake["x"][50:] == 0) > 0.05  # the pile at 0 is spread
    x = fake["x"][50:]
    moved = x > 0  # outside the pile, monotone: every row keeps its rank
    order = np.argsort(x[moved])
    assert (np.diff(got[moved][order]) >= 0).all() and got[~moved].max() <= got[moved].min() + 1e-9
    ranged = SampleRequest.__new__(SampleRequest)
    ranged.ranges = {"x": (0.0, 5.0)}
    kept = apply_value_map({"x": fake["x"].copy()}, vmap, ranged, np.random.default_rng(1))["x"]
    np.testing.assert_array_equal(kept, fake["x"])  # a range condition's column is left as drawn


def _delays(n=1000):
    """Two heavy-tailed, nearly equal columns (flights' departure and arrival delays in miniature)."""
    rng = np.random.default_rng(0)
    dep = np.where(rng.random(n) < 0.3, rng.exponential(60, n), rng.normal(-3, 3, n))
    return pd.DataFrame({"dep": dep, "arr": dep + rng.normal(0, 5, n), "kind": rng.choice(["a", "b"], n)})


def test_tvae_likeliest_modes_keep_a_strong_numeric_correlation(tmp_path, monkeypatch):
    """Independent mode draws split two nearly equal columns between unrelated modes; the likeliest mode does not,
    and the value map keeps the marginal (the share of late rows). (Without the residual column, which would keep
    the pair together either way.)"""
    monkeypatch.setattr("twinforge.models._tabular_nn._RESIDUAL_R", 1.1)
    data = _delays()
    model = twinforge.create("tvae", seed=0, progress=False, **TRAINED["tvae"]).fit(data)
    assert data[["dep", "arr"]].corr().iloc[0, 1] > 0.99
    out = model.sample(2000, seed=0)
    assert out[["dep", "arr"]].corr().iloc[0, 1] > 0.75
    assert abs((out["dep"] > 10).mean() - (data["dep"] > 10).mean()) < 0.03
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(twinforge.load(tmp_path / "m").sample(2000, seed=0), out)
    model.modes_, model.value_map_ = "drawn", {}  # each mode drawn from its softmax, as before
    assert model.sample(2000, seed=0)[["dep", "arr"]].corr().iloc[0, 1] < 0.7


def test_ctgan_likeliest_modes_keep_a_strong_numeric_correlation(tmp_path):
    data = _delays()
    model = twinforge.create("ctgan", seed=0, progress=False, likeliest_modes=True, **TRAINED["ctgan"]).fit(data)
    out = model.sample(2000, seed=0)
    corr = out[["dep", "arr"]].corr().iloc[0, 1]
    assert corr > 0.78
    assert abs((out["dep"] > 10).mean() - (data["dep"] > 10).mean()) < 0.03
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(twinforge.load(tmp_path / "m").sample(2000, seed=0), out)
    drawn = twinforge.create("ctgan", seed=0, progress=False, **TRAINED["ctgan"]).fit(data)  # the default
    assert drawn.sample(2000, seed=0)[["dep", "arr"]].corr().iloc[0, 1] < corr - 0.05  # 0.72 against 0.83


def test_likeliest_mode_keeps_the_missing_rate_and_the_allowed_modes():
    from twinforge.models._tabular_nn import _likeliest_mode

    rng = np.random.default_rng(0)
    logits = np.log(np.tile([0.3, 0.2, 0.1, 0.4], (20000, 1)))  # three modes and "missing"
    codes = _likeliest_mode(logits, 3, rng)
    assert set(np.unique(codes)) == {0, 3} and abs((codes == 3).mean() - 0.4) < 0.01
    logits[:, 0] = -np.inf  # mode 0 not allowed
    assert set(np.unique(_likeliest_mode(logits, 3, rng))) == {1, 3}
    assert (_likeliest_mode(np.log([[0.2, 0.8, 0.0]]), 2, rng) == 1).all()  # no missing seen: never missing


def test_tvae_trains_a_small_table_for_at_least_600_steps_unless_epochs_are_given():
    data = make_mixed(150)  # 150 rows in one batch: one step an epoch
    small = {"width": 16, "latent_dim": 4, "validation_share": 0}
    model = twinforge.create("tvae", seed=0, progress=False, **small).fit(data)
    assert model.training_["epochs"] == 600
    assert twinforge.create("tvae", seed=0, progress=False, epochs=7, **small).fit(data).training_["epochs"] == 7
    big = twinforge.create("tvae", seed=0, progress=False, batch_size=50, **small).fit(data)
    assert big.training_["epochs"] == 200  # 3 steps an epoch


def test_ctgan_default_epochs_reach_its_step_floors_unless_epochs_are_given(monkeypatch):
    """160 epochs, or at least 600 steps (and 100,000 / row width), or 6,000 steps where 300 epochs reach them,
    else 3,000 where they reach those (constants shrunk here)."""
    from twinforge.models import gan

    monkeypatch.setattr(gan, "_EPOCHS", 2)
    monkeypatch.setattr(gan, "_MIN_STEPS", 12)
    monkeypatch.setattr(gan, "_MIN_WORK", 0)
    monkeypatch.setattr(gan, "_TARGET_STEPS", 30)
    monkeypatch.setattr(gan, "_LONG_STEPS", 36)
    data = make_mixed(150)  # batch 50: 3 steps an epoch
    small = {"batch_size": 50, "pac": 1, "width": 8, "depth": 1, "noise_dim": 4, "min_epochs": 0}

    def epochs(**params):
        return twinforge.create("ctgan", seed=0, progress=False, **small, **params).fit(data).training_["epochs"]

    monkeypatch.setattr(gan, "_MAX_EPOCHS", 9)
    assert epochs() == 4  # 30 steps would take 10 epochs, over the cap: the 12-step floor
    monkeypatch.setattr(gan, "_MAX_EPOCHS", 10)
    assert epochs() == 10  # 30 steps in 10 epochs (36 would take 12)
    assert epochs(epochs=7) == 7
    monkeypatch.setattr(gan, "_MAX_EPOCHS", 12)
    assert epochs() == 12  # the longer target: 36 steps in 12 epochs
    # the work floor: 24 steps of this table's row width (encoded columns + conditional vector)
    monkeypatch.setattr(gan, "_MAX_EPOCHS", 9)
    fitted = twinforge.create("ctgan", seed=0, progress=False, epochs=1, **small).fit(data)
    monkeypatch.setattr(gan, "_MIN_WORK", 24 * (fitted.encoding_.dim_ + fitted.cond_.dim) - 5)
    assert epochs() == 8
    assert epochs(epochs=7) == 7


def test_ddpm_calibrates_its_marginals(tmp_path):
    """After training, ddpm's categories (and missing rates) follow the training frequencies, and its numbers the
    training marginal (the shared value map), ranks kept."""
    data = make_mixed(800)
    model = quick("ddpm", epochs=2).fit(data)  # barely trained: its own marginals are off
    assert {"income", "age"} <= set(model.value_map_)
    mapped = model.sample(3000, seed=0)
    biases, model.token_bias_ = model.token_bias_, [np.zeros_like(b) for b in model.token_bias_]
    uncalibrated = model.sample(3000, seed=0)
    model.token_bias_ = biases

    def tv(col, frame):
        return (
            frame[col]
            .astype(str)
            .value_counts(normalize=True)
            .subtract(data[col].astype(str).value_counts(normalize=True), fill_value=0)
            .abs()
            .sum()
            / 2
        )

    for col in ("city", "tier", "active"):
        assert tv(col, mapped) < 0.04 and tv(col, mapped) < tv(col, uncalibrated) / 2, col
    assert abs(mapped["income"].isna().mean() - data["income"].isna().mean()) < 0.02
    vmap, model.value_map_ = model.value_map_, {}
    raw = model.sample(3000, seed=0)
    model.value_map_ = vmap
    probs = [0.05, 0.25, 0.5, 0.75, 0.95]

    def off(a):
        return np.abs(np.nanquantile(a, probs) - np.nanquantile(data["income"].astype(float), probs)).max()

    assert off(mapped["income"].astype(float)) < 0.5 * off(raw["income"].astype(float))
    assert off(mapped["income"].astype(float)) < 120
    both = raw["income"].notna() & mapped["income"].notna()
    assert (raw.loc[both, "income"].rank() - mapped.loc[both, "income"].rank()).abs().max() < 0.05 * both.sum()
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(50, seed=3).equals(model.sample(50, seed=3))


def test_ctgan_gumbel_softmax_is_a_distribution_per_span():
    model = quick("ctgan", epochs=1).fit(make_mixed(80))
    enc = model.encoding_
    raw = torch.randn(64, enc.dim_)
    big = enc.span_starts_[0] + 1  # one category of the first span far above the others
    raw[:, big] = 50.0
    out = model._activate(raw)
    for start, size in zip(enc.span_starts_, enc.span_sizes_, strict=True):
        span = out[:, start : start + size]
        assert torch.allclose(span.sum(1), torch.ones(64), atol=1e-5) and (span >= 0).all()
    assert (out[:, big] > 0.99).all()
    assert torch.equal(out[:, torch.as_tensor(enc.scalar_pos_)], torch.tanh(raw[:, torch.as_tensor(enc.scalar_pos_)]))


def test_ddpm_learns_few_valued_numbers_as_categories_of_their_values(tmp_path):
    """A numeric column of a few distinct values (a time zone fixed by the zone's name, a count of rooms with
    missing values) is a token of its values: only those values come out, their tie to other columns is kept,
    conditions on them are honoured, and ``max_points=0`` keeps them as scores."""
    rng = np.random.default_rng(0)
    n = 1000
    zone = rng.choice(["east", "central", "west"], n, p=[0.5, 0.3, 0.2])
    rooms = rng.integers(2, 7, n).astype("float64")
    rooms[rng.random(n) < 0.1] = np.nan
    data = pd.DataFrame(
        {
            "zone": zone,
            "tz": pd.Series(zone).map({"east": -5, "central": -6, "west": -8}).to_numpy(),
            "rooms": rooms,
            "rate": rng.choice([0.5, 1.5, 2.5], n),
            "area": rng.lognormal(4, 0.5, n),
        }
    )
    model = quick("ddpm", epochs=40, width=64, depth=2, steps=10).fit(data)
    kinds = {c["name"]: c["type"] for c in model.encoding_.columns_}
    assert kinds == {"zone": "discrete", "tz": "points", "rooms": "points", "rate": "points", "area": "numeric"}
    assert set(model.value_map_) == {"area"}
    out = model.sample(2000, seed=0)
    assert set(out["tz"]) <= {-5, -6, -8} and set(out["rooms"].dropna()) <= {2, 3, 4, 5, 6}
    assert set(out["rate"]) <= {0.5, 1.5, 2.5}
    assert (out["tz"] == out["zone"].map({"east": -5, "central": -6, "west": -8})).mean() > 0.9
    assert abs(out["rooms"].isna().mean() - data["rooms"].isna().mean()) < 0.03
    given = model.sample(300, seed=1, conditions={"tz": -6, "rooms": (3, 4)})
    assert (given["tz"] == -6).all() and given["rooms"].between(3, 4).all()
    assert (given["zone"] == "central").mean() > 0.8
    between = model.sample(100, seed=2, conditions={"rate": (1.7, 2.2)})  # no value inside: clipped to the range
    assert between["rate"].between(1.7, 2.2).all()
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(50, seed=3).equals(model.sample(50, seed=3))
    scores = quick("ddpm", max_points=0).fit(data)
    assert {c["type"] for c in scores.encoding_.columns_} == {"discrete", "numeric"}


def test_value_map_tail_rows_send_the_extreme_ranks_to_the_real_extremes():
    """With ``tail_rows`` (ddpm's map) a few far real rows beyond the outer 0.5% knot (3 of 1,000 at 150-175,
    the rest within 0-60) come out mostly as far values, not spread over the empty gap; maps without it keep their
    even knots."""
    from twinforge.models._tabular_nn import apply_value_map, fit_value_map

    rng = np.random.default_rng(0)
    real = {"x": np.r_[rng.uniform(0, 60, 997), 150.0, 160.0, 175.0]}
    fake = {"x": rng.normal(30, 10, 5000)}
    new = {"x": rng.normal(30, 10, 20_000)}
    even = fit_value_map(real, fake, ["x"])
    tails = fit_value_map(real, fake, ["x"], tail_rows=True)
    assert len(even["x"]) == 2 and len(tails["x"]) == 3 and len(tails["x"][2]) == len(tails["x"][0]) > 201
    assert {150.0, 160.0, 175.0} <= set(tails["x"][1])  # a knot at each far real row
    in_gap = {}
    for name, vmap in (("even", even), ("tails", tails)):
        got = apply_value_map({"x": new["x"].copy()}, vmap, None, np.random.default_rng(1))["x"]
        assert 0.001 < np.mean(got > 60) < 0.006  # about 0.3% of rows beyond the bulk, as in the real rows
        in_gap[name] = np.mean(got[got > 60] < 140)
        assert (np.diff(got[np.argsort(new["x"])]) >= 0).all()  # ranks kept
    # the even map sends most of them into the empty gap (72%); with tail rows only the rank interval between the
    # last bulk row and the first far one does (36%)
    assert in_gap["even"] > 0.6 and in_gap["tails"] < 0.45


def test_ddpm_wide_token_is_gathered_in_and_its_logits_computed_where_needed_only():
    """A token with more categories than the width (flights' ``tailnum``) takes the cheaper path: its input
    gathered, its logits only on the rows that need them. Same loss, gradients and draws as the dense one-hot
    path, which a hooked layer (Opacus under DP) still takes."""
    from twinforge.models._tabular_nn import QuantileConstraints
    from twinforge.models.diffusion import Denoiser, Sampler, diffusion_loss

    sizes = [40, 3, 5, 30]
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Denoiser(3, sizes, width=16, depth=2)
    assert net.wide == [0, 3]
    x, t = torch.randn(64, 3, generator=gen), torch.rand(64, generator=gen).clamp_min(1e-3)
    tokens = torch.stack([torch.randint(0, k, (64,), generator=gen) for k in sizes], dim=1)
    valid = torch.ones_like(x, dtype=torch.bool)
    n = 300
    cons = QuantileConstraints(
        np.full((n, 3), np.nan), np.full(3, -np.inf), np.full(3, np.inf), np.full((n, 4), -1, dtype="int64"), {}
    )

    def run(hooked):
        hooks = [m.register_forward_hook(lambda *a: None) for m in (net.proj, net.head)] if hooked else []
        with torch.random.fork_rng():
            torch.manual_seed(1)
            net.zero_grad()
            loss = diffusion_loss(net, x, valid, tokens, t)
            loss.backward()
            torch.manual_seed(2)
            _, drawn = Sampler(net, 6, 1.0)(cons, [np.ones(k, dtype=bool) for k in sizes], 1.0, torch.device("cpu"))
        for h in hooks:
            h.remove()
        return float(loss.detach()), torch.cat([p.grad.flatten() for p in net.parameters()]), drawn

    (loss, grad, drawn), (dense_loss, dense_grad, dense_drawn) = run(False), run(True)
    assert loss == pytest.approx(dense_loss, rel=1e-5)
    assert torch.allclose(grad, dense_grad, atol=1e-6)
    assert (drawn == dense_drawn).all() and (drawn < np.asarray(sizes)).all()


def test_ddpm_weights_a_masked_tokens_cross_entropy_half_by_one_and_half_by_one_over_t(monkeypatch):
    """``1 - s + s / t`` (s = 0.5; ``1 / t`` the masked-diffusion ELBO's weight), ``t`` floored at 0.02: at one time
    for every row the token loss is the unweighted one times that weight (same draws); wide tokens too."""
    from twinforge.models import diffusion
    from twinforge.models.diffusion import Denoiser, diffusion_loss

    assert diffusion._ELBO_SHARE == 0.5
    sizes = [3, 40]  # a narrow token and a wide one (width 16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Denoiser(1, sizes, width=16, depth=1)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.stack([torch.randint(0, k, (2_000,), generator=gen) for k in sizes], dim=1)
    x = torch.zeros(2_000, 1)
    missing = torch.zeros_like(x, dtype=torch.bool)  # no score in the loss: the tokens' cross-entropy only

    def loss(t, share):
        monkeypatch.setattr(diffusion, "_ELBO_SHARE", share)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(1)
            return float(diffusion_loss(net, x, missing, tokens, torch.full((2_000,), t)))

    for t, weight in [(0.05, 0.5 + 0.5 / 0.05), (0.5, 0.5 + 0.5 / 0.5), (0.001, 0.5 + 0.5 / 0.02)]:
        plain = loss(t, 0.0)
        assert plain > 0
        assert loss(t, 0.5) == pytest.approx(weight * plain, rel=1e-5)


def test_ddpm_learns_a_wide_token_with_its_parent_and_honours_conditions_on_it(tmp_path):
    """A table whose id-like category has more levels than the width: each level's parent is learned, a level
    given as a condition is kept, and the model round-trips."""
    rng = np.random.default_rng(0)
    n = 1200
    plane = rng.integers(0, 60, n)
    data = pd.DataFrame(
        {"plane": [f"P{i:02d}" for i in plane], "carrier": np.array(list("ABC"))[plane % 3], "x": rng.normal(size=n)}
    )
    model = quick("ddpm", epochs=60, width=32, depth=2, steps=10).fit(data)
    assert model.denoiser_.wide == [model.encoding_.columns_[0]["token"]]
    out = model.sample(1000, seed=0)
    parent = np.array(list("ABC"))[out["plane"].str[1:].astype(int) % 3]
    assert (out["carrier"] == parent).mean() > 0.75  # unlearned: 1/3
    given = model.sample(100, seed=1, conditions={"plane": "P07"})
    assert (given["plane"] == "P07").all() and (given["carrier"] == "B").mean() > 0.75
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(50, seed=3).equals(model.sample(50, seed=3))


def test_ddpm_trains_longer_and_on_every_row_with_a_wide_token():
    """Defaults: 85 epochs, 200 with a token wider than the network (its levels are seen on a few rows each); given
    epochs are kept, and under DP the default stays 85. With a wide token no rows are held out by default (the full
    schedule runs, no early stopping); without one a tenth are; a given share is kept."""
    rng = np.random.default_rng(0)
    n = 200
    wide = pd.DataFrame({"plane": [f"P{i:02d}" for i in rng.integers(0, 60, n)], "x": rng.normal(size=n)})
    narrow = wide.assign(plane=wide["plane"].str[1])  # 6 levels

    def epochs(data, **params):
        base = {"batch_size": 200, "width": 32, "depth": 1, "steps": 2, "validation_share": 0.0, "epochs": None}
        return quick("ddpm", **{**base, **params}).fit(data).training_["epochs"]

    assert epochs(wide) == 200 and epochs(narrow) == 85
    assert epochs(wide, epochs=7) == 7
    assert epochs(wide, epsilon=50.0) == 85

    def held_out(data, **params):
        base = {"batch_size": 200, "width": 32, "depth": 1, "steps": 2, "epochs": 3, "validation_share": None}
        return quick("ddpm", **{**base, **params}).fit(data).training_["best_validation"] is not None

    assert not held_out(wide) and held_out(narrow)
    assert held_out(wide, validation_share=0.2) and not held_out(narrow, validation_share=0.0)


def _stamped_table(seed: int = 0) -> pd.DataFrame:
    """Every (day, hour) of four weeks, a stamp = start + day days + hour hours, a noisy reading, a category."""
    rng = np.random.default_rng(seed)
    day, hour = np.divmod(np.arange(28 * 24), 24)
    day = day + 1
    stamp = pd.Timestamp("2020-01-01 05:00") + pd.to_timedelta(day - 1, "D") + pd.to_timedelta(hour, "h")
    return pd.DataFrame(
        {
            "site": rng.choice(["a", "b"], len(day)),
            "day": day,
            "hour": hour,
            "temp": np.round(10 + 5 * np.sin(hour / 4) + rng.normal(size=len(day)), 2),
            "stamp": stamp.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )


def _stamp_holds(out: pd.DataFrame) -> pd.Series:
    expected = pd.Timestamp("2020-01-01 05:00") + pd.to_timedelta(out["day"] - 1, "D")
    return pd.to_datetime(out["stamp"]) == expected + pd.to_timedelta(out["hour"], "h")


@pytest.mark.parametrize("name", ["ctgan", "ddpm"])
def test_a_derived_column_is_computed_from_its_inputs(tmp_path, name):
    """An exact linear relation (stamp = 24 day + hour hours) is found and holds on every sampled row; conditions
    on the inputs carry into it, and conditions or given values on the derived column itself are kept."""
    data = _stamped_table()
    model = quick(name).fit(data)
    assert list(model.derived_) == ["stamp"] and sorted(model.derived_["stamp"]["inputs"]) == ["day", "hour"]
    out = model.sample(500, seed=0)
    assert _stamp_holds(out).all()
    at5 = model.sample(100, seed=1, conditions={"hour": 5})
    assert (at5["hour"] == 5).all() and _stamp_holds(at5).all()
    # a range on the derived column: honoured (the network's draw, which the range conditioned)
    low, high = "2020-01-10 00:00:00", "2020-01-12 00:00:00"
    ranged = pd.to_datetime(model.sample(50, seed=2, conditions={"stamp": (low, high)})["stamp"])
    assert ranged.between(pd.Timestamp(low), pd.Timestamp(high)).all()
    given = data.head(5)[["stamp"]].assign(stamp=["2020-01-03 07:00:00"] * 5)
    assert (model.sample(seed_data=given, seed=3)["stamp"] == "2020-01-03 07:00:00").all()
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(100, seed=4).equals(model.sample(100, seed=4))


def test_derived_columns_need_an_exact_relation_on_99_percent_of_rows():
    from twinforge.models._tabular_nn import fit_derived

    rng = np.random.default_rng(0)
    n = 1000
    a, b = rng.normal(size=n), rng.integers(0, 50, n).astype(float)
    total = a + 3 * b
    transforms = {k: type("T", (), {"discrete": False})() for k in ("a", "b", "total")}
    found = fit_derived({"a": a, "b": b, "total": total}, transforms, private=False)
    assert found["total"]["inputs"] == ["a", "b"] and np.allclose(found["total"]["coef"], [1, 3])
    off = total.copy()
    off[:5] += 0.5  # 0.5% of rows off the relation: still found
    assert list(fit_derived({"a": a, "b": b, "total": off}, transforms, private=False)) == ["total"]
    off[:20] += 0.5  # 2%: not
    assert not fit_derived({"a": a, "b": b, "total": off}, transforms, private=False)
    assert not fit_derived({"a": a, "b": b, "total": total}, transforms, private=True)  # under DP: none
    # a column missing on nearly every row does not hide a relation among the others
    gappy = np.where(np.arange(n) % 200 == 0, 1.0, np.nan) * rng.normal(size=n)
    with_gaps = {"a": a, "b": b, "total": total, "gappy": gappy}
    assert list(fit_derived(with_gaps, {**transforms, "gappy": transforms["a"]}, private=False)) == ["total"]
    assert not quick("ctgan").fit(make_mixed(200)).derived_  # no relation in the demo table
    assert not quick("ddpm").fit(make_mixed(200)).derived_


def _heavy_pair(n: int = 1_500) -> pd.DataFrame:
    """A heavy-tailed pair (a delay and a later one, correlation about 0.98) beside a category."""
    rng = np.random.default_rng(0)
    dep = np.round(rng.standard_t(2, n) * 10 + np.where(rng.random(n) < 0.2, rng.exponential(60, n), 0))
    arr = np.round(dep - 5 + rng.normal(0, 8, n))
    arr[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({"dep": dep, "g": rng.choice(list("abc"), n), "arr": arr})


@pytest.mark.parametrize("name", ["tvae", "ddpm"])
def test_a_heavy_tailed_linear_pair_is_learned_through_the_residual_and_conditions_on_it_hold(tmp_path, name):
    data = _heavy_pair()
    model = twinforge.create(name, seed=0, progress=False, epochs=40, width=64).fit(data)
    assert list(model.residuals_) == ["arr"] and model.residuals_["arr"]["input"] == "dep"
    out = model.sample(2_000, seed=0)
    assert list(out.columns) == ["dep", "g", "arr"]
    assert out[["dep", "arr"]].corr().iloc[0, 1] > 0.9
    assert 0.0 < out["arr"].isna().mean() < 0.1
    late = model.sample(200, seed=1, conditions={"dep": 100.0})
    assert (late["dep"] == 100).all() and abs(late["arr"].median() - 95) < 10  # arr follows the given dep
    assert (model.sample(50, seed=2, conditions={"arr": 30.0})["arr"] == 30).all()
    assert model.sample(50, seed=3, conditions={"arr": (0, 10)})["arr"].between(0, 10).all()
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(100, seed=4).equals(model.sample(100, seed=4))
    # a light-tailed or weak pair keeps the plain encoding
    rng = np.random.default_rng(1)
    x = rng.normal(size=1_500)
    plain = pd.DataFrame({"x": x, "y": x + rng.normal(0, 0.1, 1_500), "z": rng.standard_t(2, 1_500)})
    assert twinforge.create(name, seed=0, progress=False, epochs=1).fit(plain).residuals_ == {}
