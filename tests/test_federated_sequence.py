"""Federated training of the sequence model: sites hold whole entities; only aggregates and weights travel."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("flwr")

import twinforge
from twinforge.errors import DataError, MetadataError, ParameterError
from twinforge.federated import _apps, simulate

QUICK = {"hidden": 16, "embedding_dim": 4, "components": 2}


def fleet(units: int = 24, steps: int = 30, seed: int = 0) -> pd.DataFrame:
    """Entities with an AR(1) channel ``x`` (lag-1 correlation 0.9) whose level follows the static ``group``
    (a: 0, b: 6), a categorical channel ``mode`` and a static ``size``."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(units):
        group = "a" if u % 2 == 0 else "b"
        level = 0.0 if group == "a" else 6.0
        size = float(rng.integers(1, 5)) * 10
        x = level + rng.normal(0, 1.0)
        for t in range(steps):
            x = level + 0.9 * (x - level) + rng.normal(0, 0.45)
            mode = "on" if x > level else "off"
            rows.append((f"U{u:03d}", t, round(x, 3), mode, group, size))
    return pd.DataFrame(rows, columns=["unit", "t", "x", "mode", "group", "size"])


def halves(df: pd.DataFrame, skew: bool = False) -> list[pd.DataFrame]:
    units = sorted(df["unit"].unique())
    # skewed (non-IID): site 1 holds mostly group a, site 2 mostly group b
    mostly_a = [u for i, u in enumerate(units) if (i % 2 == 0) == (i % 6 != 0)]
    first = mostly_a if skew else units[: len(units) // 2]
    mask = df["unit"].isin(first)
    return [df[mask].reset_index(drop=True), df[~mask].reset_index(drop=True)]


def run(tmp_path, parts, name="m", **kw):
    kw.setdefault("rounds", 2)
    return simulate(
        parts, tmp_path / name, model="sequence", params=QUICK, sequence={"entity_key": "unit", "time_key": "t"}, **kw
    )


def test_two_sites_give_a_sequence_model_directory(tmp_path):
    df = fleet()
    fitted = run(tmp_path, halves(df))
    loaded = twinforge.load(tmp_path / "m")
    fake = loaded.sample(entities=6, seed=1)
    assert list(fake.columns) == list(df.columns)
    assert fake["unit"].nunique() == 6
    assert fake.dtypes.astype(str).to_dict() == df.dtypes.astype(str).to_dict()
    assert set(fake["mode"]) <= {"on", "off"} and set(fake["group"]) <= {"a", "b"}
    assert loaded.layout_["static_columns"] == ["group", "size"]  # detected on the first site
    info = loaded.fit_info_
    assert info["entities"] == 24 and info["rows"] == len(df)
    fed = info["federated"]
    assert fed["sites"] == 2 and [h["round"] for h in fed["history"]] == [1, 2] and fed["bytes_per_round"] > 0
    pd.testing.assert_frame_equal(fitted.sample(entities=3, seed=2), loaded.sample(entities=3, seed=2))
    # the twin side works on the federated population model
    history = df[df["unit"] == "U003"].head(12)
    twin = loaded.personalize(history, epochs=2)
    assert twin.forecast(horizon=4, paths=3).shape[0] == 12
    assert len(loaded.forecast(history, horizon=2, paths=2)) == 4
    # the agreed encoding is the pooled data's, up to the histograms' resolution
    central = twinforge.create("sequence", seed=0, epochs=1, progress=False, **QUICK)
    central.fit(df, entity_key="unit", time_key="t")
    x_c = next(b for b in central.encoding_.blocks if b["name"] == "x")
    x_f = next(b for b in loaded.encoding_.blocks if b["name"] == "x")
    assert x_f["mean"] == pytest.approx(x_c["mean"], abs=0.01) and x_f["std"] == pytest.approx(x_c["std"], rel=0.01)
    assert loaded.encoding_.state["gap"] == central.encoding_.state["gap"]
    assert loaded.layout_["time_scale"] == central.layout_["time_scale"]
    assert [b["name"] for b in loaded.encoding_.blocks] == [b["name"] for b in central.encoding_.blocks]


def test_the_federated_model_learns_dynamics_and_static_relations(tmp_path):
    df = fleet(units=40, steps=30)
    model = run(tmp_path, halves(df, skew=True), rounds=8, local_epochs=3, strategy="fedprox", seed=0)
    fake = model.sample(entities=60, seed=3)

    def lag1(frame: pd.DataFrame) -> float:
        r = []
        for _, g in frame.groupby("unit"):
            x = g["x"].to_numpy()
            if len(x) > 3 and x.std() > 0:
                r.append(np.corrcoef(x[:-1], x[1:])[0, 1])
        return float(np.mean(r))

    real_acf, fake_acf = lag1(df), lag1(fake)
    assert real_acf > 0.6 and fake_acf > 0.5 * real_acf, (real_acf, fake_acf)
    # the level follows the static group in every sampled entity's series (sites saw mostly one group each)
    means = fake.groupby("group")["x"].mean()
    assert set(means.index) == {"a", "b"} and means["b"] - means["a"] > 4.0, means
    # and within a step, the categorical channel follows the number it depends on
    agree = ((fake["x"] > fake["group"].map({"a": 0.0, "b": 6.0})) == (fake["mode"] == "on")).mean()
    assert agree > 0.75, agree


def _texts(msg) -> tuple[str, set]:
    texts, shapes = [], set()
    if msg.has_error():
        return msg.error.reason or "", shapes
    for record in msg.content.values():
        if hasattr(record, "items"):
            for k, v in record.items():
                if hasattr(v, "numpy"):
                    shapes.add((k, tuple(v.numpy().shape)))
                else:
                    texts.append(str(v))
    return "\n".join(texts), shapes


def test_messages_hold_no_rows_and_no_per_entity_values(tmp_path):
    df = fleet(units=20, steps=25)
    rng = np.random.default_rng(1)
    df["secret"] = np.round(1000 + rng.random(len(df)) * 9000, 4)  # every row's value is unique
    parts = halves(df)
    recorder = _apps._Recorder(keep=True)
    run(tmp_path, parts, recorder=recorder)
    secrets = {f"{v:.4f}".rstrip("0").rstrip(".") for v in df["secret"]}
    units = set(df["unit"])
    out_shapes, in_shapes, kinds = set(), set(), set()
    for direction, msg in recorder.messages:
        kinds.add(msg.metadata.message_type)
        text, shapes = _texts(msg)
        assert not set(re.findall(r"\d+\.\d+", text)) & secrets, "a row's value was sent"
        assert not any(u in text for u in units), "an entity key was sent"
        (out_shapes if direction == "out" else in_shapes).update(shapes)
    assert {"query.stats1", "query.stats2", "train", "query.seqz"} <= kinds
    # only the averaged weights travel as arrays, in the shapes the server sent; no entity embedding leaves
    assert in_shapes and in_shapes <= out_shapes
    assert not any(k.startswith("seq/entity") for k, _ in in_shapes)
    assert not any(s and s[0] in (10, 250) for _, s in in_shapes)  # no array with one entry per entity or step
    # the embeddings' summary is three sums, not one vector per entity
    replies = [m for d, m in recorder.messages if d == "in" and m.metadata.message_type == "query.seqz"]
    assert len(replies) == 2
    for m in replies:
        moments = json.loads(str(m.content["stats"]["json"]))
        assert set(moments) == {"n", "sum", "outer"} and moments["n"] == 10
        assert len(moments["sum"]) == QUICK["embedding_dim"]


def test_a_site_with_another_schema_or_broken_entities_is_refused(tmp_path, caplog):
    df = fleet(units=24)
    a, b = halves(df)
    renamed = fleet(units=6, seed=4).rename(columns={"x": "temperature"})
    renamed["unit"] = "R" + renamed["unit"]
    meta = twinforge.Metadata.detect(df, entity_key="unit", time_index="t")
    c = fleet(units=6, seed=5)
    c["unit"] = "C" + c["unit"]
    c.loc[c["unit"] == "CU001", "size"] = np.arange((c["unit"] == "CU001").sum())  # varies within an entity
    model = run(tmp_path, [a, renamed, c, b], metadata=meta, rounds=1, min_sites=2)
    assert model.fit_info_["federated"]["sites"] == 2
    assert "temperature" in caplog.text and "vary within an entity" in caplog.text
    with pytest.raises(MetadataError, match="temperature"):
        run(tmp_path, [a, renamed], name="m2", metadata=meta, rounds=1)
    assert not (tmp_path / "m2").exists()


def test_bad_settings_are_clear_errors(tmp_path):
    a, b = halves(fleet(units=8, steps=10))
    with pytest.raises(ParameterError, match=r"\['mode'\] have no declared `categories`"):
        run(tmp_path, [a, b], dp="local", epsilon=1.0)
    with pytest.raises(ParameterError, match="whole entity"):
        run(tmp_path, [a, b], dp="central")
    with pytest.raises(ParameterError, match="not a column"):
        simulate([a, b], tmp_path / "x", model="sequence", sequence={"entity_key": "nope", "time_key": "t"})
    with pytest.raises(ParameterError, match="--model sequence"):
        simulate([a, b], tmp_path / "x", model="tvae", sequence={"entity_key": "unit", "time_key": "t"})
    with pytest.raises(DataError, match="whole entities"):
        run(tmp_path, [a, pd.concat([a.head(5), b])])


def test_cli_simulate_sequence_and_sample_entities(tmp_path):
    from typer.testing import CliRunner

    from twinforge.cli import app

    runner = CliRunner()
    df = fleet(units=12, steps=15)
    paths = []
    for i, part in enumerate(halves(df)):
        paths.append(str(tmp_path / f"site{i}.csv"))
        part.to_csv(paths[-1], index=False)
    out = tmp_path / "fleet"
    args = ["federated", "simulate", "--data", *paths, "--entity-key", "unit", "--time-key", "t", "--static", "group"]
    result = runner.invoke(app, [*args, "--rounds", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "sequence across 2 sites" in result.output.replace("\n", " ")
    assert twinforge.load(out).layout_["static_columns"] == ["group"]
    result = runner.invoke(app, ["sample", str(out), "--entities", "3", "-o", str(tmp_path / "fake.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "fake.csv")["unit"].nunique() == 3
    whole = tmp_path / "all.csv"
    df.to_csv(whole, index=False)
    base = ["federated", "simulate", "--data", str(whole), "-m", "sequence", "--entity-key", "unit", "--time-key", "t"]
    result = runner.invoke(app, [*base, "--partition-by", "group", "--rounds", "1", "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    assert twinforge.load(tmp_path / "g").fit_info_["federated"]["sites"] == 2
    for bad, words in [
        (["--partition-by", "mode"], "whole entities"),
        (["--partition-by", "group", "--dp", "local", "--epsilon", "1"], "no declared `categories`"),
    ]:
        result = runner.invoke(app, [*base, *bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2 and words in result.output.replace("\n", " "), result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "bad").exists()


def test_server_resumes_a_sequence_federation(tmp_path, monkeypatch, caplog):
    real_save = _apps._save_checkpoint

    def save_then_die(settings, state, weights):
        real_save(settings, state, weights)
        if state["round"] == 1:
            raise KeyboardInterrupt  # the server is killed right after round 1's checkpoint

    monkeypatch.setattr(_apps, "_save_checkpoint", save_then_die)
    parts = halves(fleet(units=10, steps=12))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, parts, seed=0)
    monkeypatch.setattr(_apps, "_save_checkpoint", real_save)
    recorder = _apps._Recorder(keep=True)
    caplog.set_level("INFO", logger="twinforge.federated")
    model = run(tmp_path, parts, seed=0, recorder=recorder)
    assert "resuming from round 1" in caplog.text
    kinds = [m.metadata.message_type for d, m in recorder.messages if d == "out"]
    assert kinds.count("train") == 2 and "query.stats1" not in kinds and kinds.count("query.seqz") == 2
    assert [h["round"] for h in model.fit_info_["federated"]["history"]] == [1, 2]
    assert len(model.sample(entities=2, seed=0)) > 0


def test_a_rare_level_is_generated_at_its_agreed_rate(tmp_path):
    df = fleet(units=24, steps=30)
    rng = np.random.default_rng(3)
    df["alarm"] = (rng.random(len(df)) < 0.01).astype("int64")  # 1% of steps, at random
    model = run(tmp_path, halves(df), rounds=2)
    fake = model.sample(entities=200, seed=5)
    assert 0.004 < fake["alarm"].mean() < 0.025, fake["alarm"].mean()
    assert model.train_info_["level_calibration_gap"] < 0.01


def _declared(df: pd.DataFrame) -> twinforge.Metadata:
    meta = twinforge.Metadata.detect(df, entity_key="unit", time_index="t")
    meta.primary_key = None
    meta.update_column("mode", categories=["off", "on"])
    meta.update_column("group", categories=["a", "b"])
    return meta


def test_local_dp_is_entity_level_and_within_budget(tmp_path, monkeypatch):
    """Each DP-SGD sample is one whole entity (never two windows of one); every site's accountant counts its
    entities and stays within the budget; the embeddings leave a site only as noisy sums."""
    from twinforge.federated import _localdp, _sequence

    df = fleet(units=16, steps=10)
    meta = _declared(df)
    samples, units = [], []
    real_losses, real_dpsgd = _sequence._entity_losses, _localdp.LocalDP.dpsgd

    def losses(model, params, z, data, idx, rng, device):
        out = real_losses(model, params, z, data, idx, rng, device)
        samples.append((len(idx), len(set(idx.tolist())), tuple(out.shape)))
        return out

    def dpsgd(self, n_rows, batch_size, steps_per_epoch, rng):
        units.append(n_rows)
        return real_dpsgd(self, n_rows, batch_size, steps_per_epoch, rng)

    monkeypatch.setattr(_sequence, "_entity_losses", losses)
    monkeypatch.setattr(_localdp.LocalDP, "dpsgd", dpsgd)
    recorder = _apps._Recorder(keep=True)
    model = run(tmp_path, halves(df), metadata=meta, dp="local", epsilon=200.0, recorder=recorder)
    privacy = model.fit_info_["federated"]["privacy"]
    assert privacy["mode"] == "local" and privacy["unit"] == "entity" and "entity-level" in privacy["accountant"]
    assert model.static_model_.net_.shape_scale == 1.0  # trained by DP-SGD too: the shape head unscaled
    # DP-SGD trains the linear within-step link: the bounded link's gate (the default) stays at its zero start,
    # so the network samples with exactly what it was trained as
    assert model.link == "bounded" and not model.net_.within.gate.weight.any() and not model.net_.within.gate.bias.any()
    assert len(privacy["sites"]) == 2
    for site in privacy["sites"].values():
        assert 0.5 * 200.0 < site["epsilon"] <= 200.0 + 1e-6 and site["delta"] <= 1e-5
    assert privacy["epsilon"] == pytest.approx(max(s["epsilon"] for s in privacy["sites"].values()), abs=1e-3)
    assert units == [8, 8, 8, 8]  # the sampled units are a site's 8 entities (2 sites x 2 rounds), not its steps
    dp_steps = [s for s in samples if s[2]]  # the DP-SGD steps (the embeddings' final fit takes all entities)
    assert dp_steps and all(n == distinct and shape == (n,) for n, distinct, shape in dp_steps)
    # the embeddings' sums are noised: no exact entity count, never one vector per entity
    replies = [m for d, m in recorder.messages if d == "in" and m.metadata.message_type == "query.seqz"]
    for m in replies:
        moments = json.loads(str(m.content["stats"]["json"]))
        assert set(moments) == {"n", "sum", "outer"} and moments["n"] != 8
    # only what each site spent is reported with its update (no loss, no row count)
    trains = [m for d, m in recorder.messages if d == "in" and m.metadata.message_type == "train"]
    assert trains and all(
        set(m.content["metrics"]) == {"num-examples", "dp-epsilon", "dp-delta", "dp-noise"} for m in trains
    )
    assert all(int(m.content["metrics"]["num-examples"]) == 1 for m in trains)
    fake = twinforge.load(tmp_path / "m").sample(entities=3, seed=0)
    assert fake["unit"].nunique() == 3 and set(fake["mode"].dropna()) <= {"off", "on"}


def test_local_dp_refuses_what_would_break_entity_level_privacy(tmp_path):
    df = fleet(units=8, steps=6)
    a, b = halves(df)
    meta = _declared(df)
    with pytest.raises(ParameterError, match="context"):
        simulate(
            [a, b],
            tmp_path / "c",
            model="sequence",
            params={**QUICK, "context": 4},
            metadata=meta,
            sequence={"entity_key": "unit", "time_key": "t"},
            dp="local",
            epsilon=3.0,
        )
    with pytest.raises(MetadataError, match=r"delta=0.5 is >= 1/n for its 4 entities"):
        run(tmp_path, [a, b], name="d", metadata=meta, dp="local", epsilon=3.0, delta=0.5)
    with pytest.raises(DataError, match="whole entities"):  # an entity at two sites would count twice
        run(tmp_path, [a, pd.concat([a.head(3), b])], name="e", metadata=meta, dp="local", epsilon=3.0)


def test_private_parts_compute_what_the_sequence_network_computes(tmp_path):
    import torch

    from twinforge.federated._sequence import _PrivateParts

    # the private parts implement the linear within-step link (a DP run never trains the bounded link's gate,
    # which starts at zero, so there the default bounded link stays linear)
    model = simulate(
        halves(fleet(units=8, steps=6)), tmp_path / "m", model="sequence", params={**QUICK, "link": "linear"},
        sequence={"entity_key": "unit", "time_key": "t"}, rounds=1,
    )  # fmt: skip
    net = model.net_
    with torch.no_grad():
        net.within.weight.normal_()  # zero at the start: give the masked map something to show
    parts = _PrivateParts(net, model.static_model_.net_)
    b, length = 3, 5
    d_step = net.within.weight.shape[1]
    gen = torch.Generator().manual_seed(0)
    prev, cur = torch.randn(b, length, d_step, generator=gen), torch.randn(b, length, d_step, generator=gen)
    extra = torch.randn(b, length, net.inp.in_features - d_step - net.h0.in_features, generator=gen)
    cz = torch.randn(b, net.h0.in_features, generator=gen)
    with torch.no_grad():
        out, _ = net.run(prev, extra, cz, net.initial(cz))
        torch.testing.assert_close(parts.params(prev, extra, cz, cur), net.params(out, cz, cur), atol=1e-5, rtol=1e-5)


def test_entity_weighted_statistics_move_by_at_most_their_sensitivity():
    """Removing one entity (all its steps) moves a DP statistics release by at most the sensitivity the noise is
    calibrated to, however long the entity: its steps weigh 1 / its length."""
    from twinforge.federated import _sequence

    df = fleet(units=10, steps=20)
    df = df[~((df["unit"] == "U003") & (df["t"] >= 4))]  # entities of 4 and 20 steps
    meta = _declared(df)
    spec = _sequence.SequenceSpec.resolve(meta, "unit", "t", ["group", "size"])

    def flat(stats: dict) -> dict:
        out = {}
        for part in ("steps", "entities"):
            out[(part, "n")] = stats[part]["n"]
            for name, col in stats[part]["columns"].items():
                out[(part, name, "missing")] = col.get("missing", 0.0)
                for key in ("hist", "decimals"):
                    for i, v in enumerate(col.get(key, [])):
                        out[(part, name, key, i)] = v
                for level, v in zip(col.get("levels", []), col.get("counts", []), strict=True):
                    out[(part, name, "level", level)] = v
        return out

    bound = _sequence.stats_sensitivity(meta, spec)
    for unit in ("U003", "U004"):
        full = flat(_sequence.site_stage1(df, meta, spec, 1e-12, 0, 0.0))
        less = flat(_sequence.site_stage1(df[df["unit"] != unit], meta, spec, 1e-12, 0, 0.0))
        moved = np.sqrt(sum((full.get(k, 0.0) - less.get(k, 0.0)) ** 2 for k in set(full) | set(less)))
        assert 0.5 < moved <= bound + 1e-6
        assert full[("steps", "n")] == pytest.approx(10.0) and less[("steps", "n")] == pytest.approx(9.0)
