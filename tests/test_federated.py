"""Federated training on Flower, in process: the global model, privacy of the messages, non-IID sites, faults.

The deployment on a real SuperLink and SuperNodes is in test_federated_deploy.py.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("flwr")

import itertools

import twinforge
from twinforge.errors import DataError, MetadataError, ParameterError
from twinforge.federated import _apps, simulate

from .conftest import make_mixed

QUICK = {
    "auto": {"width": 32, "depth": 1},
    "tvae": {"width": 32, "latent_dim": 8, "batch_size": 100},
    "ctgan": {"width": 32, "batch_size": 100, "pac": 5},
    "ddpm": {"width": 32, "depth": 1, "steps": 4, "batch_size": 100},
}


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    return make_mixed(n, seed).drop(columns=["joined"])


def sites(k: int = 2, n: int = 400) -> list[pd.DataFrame]:
    df = table(n)
    cuts = np.linspace(0, len(df), k + 1).astype(int)
    return [df.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(cuts)]


@pytest.mark.parametrize("model", ["auto", "tvae", "ctgan", "ddpm"])
def test_simulate_gives_an_ordinary_model_directory(tmp_path, model):
    out = tmp_path / "model"
    fitted = simulate(sites(), out, model=model, params=QUICK[model], rounds=2, seed=0)
    loaded = twinforge.load(out)
    fake = loaded.sample(150, seed=1)
    assert list(fake.columns) == list(table().columns)
    assert len(fake) == 150
    assert set(fake["city"].dropna()) <= {"Oslo", "Rome", "Lima", "Pune"}
    fed = loaded.fit_info_["federated"]
    assert fed["sites"] == 2 and fed["rounds"] == 2 and [h["round"] for h in fed["history"]] == [1, 2]
    assert fed["bytes_per_round"] > 0 and fed["privacy"]["dp"] is False
    assert loaded.fit_info_["rows"] == 400
    pd.testing.assert_frame_equal(fitted.sample(20, seed=3), loaded.sample(20, seed=3))
    assert not any(p.name.endswith("federated-checkpoint") for p in tmp_path.iterdir())


def test_federated_auto_groups_its_columns_like_a_central_fit(tmp_path, monkeypatch):
    """The grouped passes are chosen after federation, from the global model's own samples (no site is asked)."""
    from twinforge.models import autoregressive as ar

    recorder = _apps._Recorder(keep=True)
    model = simulate(sites(2, 1200), tmp_path / "m", model="auto", params=QUICK["auto"], rounds=3, recorder=recorder)
    groups = model.groups_
    assert sorted(i for g in groups for i in g) == list(range(len(model.columns_)))
    assert len(groups) < len(model.columns_)  # some columns share a trunk pass
    assert twinforge.load(tmp_path / "m").groups_ == groups
    # the grouping sent nothing: one stats1, one stats2 and one train per site and round
    assert len([1 for d, _ in recorder.messages if d == "out"]) == 2 * (2 + 3)
    passes = []
    real = ar._hidden_inplace
    monkeypatch.setattr(ar, "_hidden_inplace", lambda net, x, *a: passes.append(len(x)) or real(net, x, *a))
    model.sample(3000, seed=0)
    assert len(passes) == len(groups)


def test_same_seed_same_model(tmp_path):
    a = simulate(sites(), tmp_path / "a", model="tvae", params=QUICK["tvae"], rounds=2, seed=5)
    b = simulate(sites(), tmp_path / "b", model="tvae", params=QUICK["tvae"], rounds=2, seed=5)
    pd.testing.assert_frame_equal(a.sample(50, seed=0), b.sample(50, seed=0))


def test_agreed_transform_matches_pooled_data(tmp_path):
    parts = sites(3, 600)
    model = simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=1)
    pooled = pd.concat(parts)
    tt = model.transformer_
    assert tt.transforms_["age"].min_ == pooled["age"].min() and tt.transforms_["age"].max_ == pooled["age"].max()
    assert tt.transforms_["income"].min_ <= pooled["income"].min() <= tt.transforms_["income"].min_ + 15
    assert tt.transforms_["income"].max_ - 15 <= pooled["income"].max() <= tt.transforms_["income"].max_
    assert set(tt.transforms_["city"].levels_) == set(pooled["city"].dropna())


def test_fake_pii_avoids_every_sites_real_values(tmp_path):
    """Each site sends only short hashes of its PII values (and none with DP): the model avoids all sites' values."""
    from twinforge.transforms._generated import _digest

    parts = sites(2, 600)
    model = simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=1)
    t = model.transformer_.transforms_["email"]
    for part in parts:
        real = part["email"].dropna().str.strip().str.lower().unique()
        assert np.isin(_digest(real, t.hash_bits_), t.seen_).all()
    assert not set(model.sample(300, seed=0)["email"]) & set(pd.concat(parts)["email"])
    private = simulate(
        parts, tmp_path / "p", model="tvae", params=QUICK["tvae"], rounds=1, dp="local", epsilon=8.0, delta=1e-4
    )
    assert private.transformer_.transforms_["email"].seen_ == []


# ------------------------------------------------------------------------------------------ privacy
def _message_text(msg) -> tuple[str, list[tuple[str, tuple]]]:
    """Every config and metric value of a message as text (the model header's arrays, sent as compressed bytes,
    decoded and written out too), and the (name, shape) of every array it carries."""
    texts, arrays = [], []
    if msg.has_error():
        return msg.error.reason or "", []
    for name, record in msg.content.items():
        if hasattr(record, "to_numpy_ndarrays") or type(record).__name__ == "ArrayRecord":
            arrays += [(k, tuple(v.shape)) for k, v in record.items()]
        else:
            texts += [f"{name}.{k}={v}" for k, v in record.items()]
            if "header-arrays" in record:
                header = _apps._decode_header(record)
                floats = [a for a in _arrays_in(header) if a.dtype.kind == "f"]
                texts += [f"{v:.4f}".rstrip("0").rstrip(".") for a in floats for v in a.ravel()]
    return "\n".join(texts), arrays


def _arrays_in(doc) -> list[np.ndarray]:
    if isinstance(doc, np.ndarray):
        return [doc]
    items = doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    return [a for v in items for a in _arrays_in(v)]


@pytest.mark.parametrize(("model", "dp"), [("tvae", False), ("tvae", True), ("tvae", "local"), ("auto", False)])
def test_messages_hold_only_weights_and_aggregates(tmp_path, model, dp):
    rng = np.random.default_rng(0)
    parts = sites(2, 1200)
    for i, p in enumerate(parts):
        # a value only one row holds, and a level only one row holds
        p["secret"] = np.round(1000 + rng.random(len(p)) * 9000, 4)
        p.loc[3, "city"] = f"Atlantis{i}"
    recorder = _apps._Recorder(keep=True)
    model = simulate(
        parts,
        tmp_path / "m",
        model=model,
        params=QUICK[model],
        rounds=2,
        dp=dp,
        stats_noise_multiplier=0.5,
        recorder=recorder,
        **({"epsilon": 10.0} if dp == "local" else {}),
    )
    assert recorder.messages
    secrets = {f"{v:.4f}".rstrip("0").rstrip(".") for p in parts for v in p["secret"]}
    out_shapes, in_shapes = set(), set()
    for direction, msg in recorder.messages:
        text, arrays = _message_text(msg)
        numbers = set(re.findall(r"\d+\.\d+", text))
        assert not numbers & secrets, "a row's value was sent"
        (out_shapes if direction == "out" else in_shapes).update(arrays)
        if dp and msg.metadata.message_type.startswith("query") and direction == "in":
            stats = json.loads(str(msg.content["stats"]["json"]))
            counts = _all_counts(stats)
            assert counts and sum(float(c).is_integer() for c in counts) < 0.01 * len(counts), "counts not noised"
            if dp == "local":  # a level one row holds is not even named by its site
                assert "Atlantis" not in text
    # only the model's weights travel as arrays, with the shapes the server sent
    assert in_shapes == out_shapes
    assert not any(s and s[0] in (600, 1200) for _, s in in_shapes)
    # the levels one row held never reach the model with DP (count threshold on noisy counts)
    levels = set(model.transformer_.transforms_["city"].levels_)
    if dp == "local":
        assert not levels & {"Atlantis0", "Atlantis1"}
        privacy = model.fit_info_["federated"]["privacy"]
        assert privacy["mode"] == "local" and set(privacy["sites"]) == {"site1", "site2"}  # the sites' names
        assert all(0 < s["epsilon"] <= 10.0 for s in privacy["sites"].values())
        assert privacy["epsilon"] == pytest.approx(max(s["epsilon"] for s in privacy["sites"].values()), abs=1e-4)
        # calibrated for all planned rounds: after the last one the budget is (nearly) all spent
        assert privacy["epsilon"] > 0.9 * 10.0
        replies = [m for d, m in recorder.messages if d == "in" and m.metadata.message_type == "train"]
        assert replies and all(
            set(m.content["metrics"]) == {"num-examples", "dp-epsilon", "dp-delta", "dp-noise"} for m in replies
        )
        assert all(set(m.content) == {"arrays", "metrics", "site"} for m in replies)
    elif dp:
        assert not levels & {"Atlantis0", "Atlantis1"}
        privacy = model.fit_info_["federated"]["privacy"]
        assert privacy["dp"] and 0 < privacy["epsilon"] < np.inf and privacy["releases"] == 4
        replies = [m for d, m in recorder.messages if d == "in" and m.metadata.message_type == "train"]
        assert all(int(m.content["metrics"]["num-examples"]) == 1 for m in replies)  # sizes not published


def _all_counts(stats) -> list[float]:
    out = []
    if isinstance(stats, dict):
        for k, v in stats.items():
            if k in ("counts", "hist", "candidate_counts", "decimals") and isinstance(v, list):
                out += [float(x) for x in v]
            elif k in ("n", "missing"):
                out.append(float(v))
            else:
                out += _all_counts(v)
    return out


@pytest.mark.parametrize("model", ["auto", "tvae", "ctgan", "ddpm"])
def test_local_dp_spends_within_budget_and_is_reproducible(tmp_path, model):
    parts = sites(2, 1200)
    kw = dict(model=model, params=QUICK[model], rounds=2, dp="local", epsilon=8.0, delta=1e-4)
    a = simulate(parts, tmp_path / "a", **kw)
    b = simulate(parts, tmp_path / "b", **kw)
    privacy = a.fit_info_["federated"]["privacy"]
    assert privacy["mode"] == "local" and 4 < privacy["epsilon"] <= 8.0 and privacy["delta"] <= 1e-4
    assert all(s["noise_multiplier"] > 0.3 for s in privacy["sites"].values())
    pd.testing.assert_frame_equal(a.sample(50, seed=1), b.sample(50, seed=1))
    assert twinforge.load(tmp_path / "a").fit_info_["federated"]["privacy"] == privacy
    from typer.testing import CliRunner

    from twinforge.cli import app

    shown = CliRunner().invoke(app, ["info", str(tmp_path / "a")])
    assert shown.exit_code == 0 and "local DP" in shown.output and f"max epsilon={privacy['epsilon']:g}" in shown.output


def test_local_dp_bad_budget(tmp_path):
    from typer.testing import CliRunner

    from twinforge.cli import app

    parts = sites(2, 200)
    with pytest.raises(ParameterError, match="epsilon must be > 0"):
        simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], dp="local", epsilon=-1.0)
    with pytest.raises(ParameterError, match="needs --epsilon"):
        simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], dp="local")
    with pytest.raises(ParameterError, match="does not take one"):
        simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], dp="central", epsilon=1.0)
    with pytest.raises(ParameterError, match="dp must be"):
        simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], dp="loc")
    with pytest.raises(MetadataError, match="delta"):  # a site with more rows than 1/delta refuses
        simulate(parts, tmp_path / "m", model="tvae", params=QUICK["tvae"], dp="local", epsilon=1.0, delta=0.01)
    path = tmp_path / "d.csv"
    table(200).to_csv(path, index=False)
    args = ["federated", "simulate", "--data", str(path), "--partition-by", "tier", "--out", str(tmp_path / "c")]
    for bad in (
        ["--dp", "local", "--epsilon", "0"],
        ["--dp", "local", "--epsilon", "1", "--stats-share", "1.5"],
        ["--dp", "local"],
        ["--dp", "local", "--strategy", "fedprox", "--epsilon", "1"],
        ["--lr-decay", "1.5"],
    ):
        result = CliRunner().invoke(app, [*args, *bad])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert any(word in result.output for word in ("epsilon", "--dp local", "--lr-decay"))


def test_local_dp_at_epsilon_1_works_or_says_which_budget_would(tmp_path):
    """At epsilon 1 the statistics of small sites are mostly noise: numeric bounds then come from coarser blocks
    of the same noisy histogram, and a column with no level above the noise is a clear error naming a budget."""
    kw = dict(model="auto", params=QUICK["auto"], rounds=1, dp="local", epsilon=1.0, delta=1e-5, seed=0)
    model = simulate(sites(3, 3000), tmp_path / "a", **kw)
    assert model.fit_info_["federated"]["privacy"]["epsilon"] <= 1.0
    assert model.net_.shape_scale == 1.0  # as a central DP fit: the shape head unscaled under DP-SGD
    assert len(model.sample(50, seed=0)) == 50
    small = sites(2, 1200)
    with pytest.raises(DataError, match=r"--epsilon 1\.\d+ or more names a level.*declare the columns' `categories`"):
        simulate(small, tmp_path / "b", **kw)
    # declared levels and bounds are public: the same small sites then train at epsilon 1
    meta = twinforge.Metadata.detect(small[0]).to_dict()
    meta["columns"]["city"]["categories"] = ["Oslo", "Rome", "Lima", "Pune", "Kyiv"]
    meta["columns"]["tier"]["categories"] = ["bronze", "silver", "gold"]
    meta["columns"]["income"] |= {"low": 1000, "high": 6000}
    model = simulate(small, tmp_path / "c", metadata=meta, **kw)
    tt = model.transformer_
    assert set(tt.transforms_["city"].levels_) == {"Oslo", "Rome", "Lima", "Pune", "Kyiv"}
    assert (tt.transforms_["income"].min_, tt.transforms_["income"].max_) == (1000.0, 6000.0)
    fake = model.sample(500, seed=0)
    assert fake["active"].notna().all()  # a bool column cannot hold a missing value: none is made up from noise
    assert fake["income"].between(1000, 6000).all()


def test_privacy_budget_shown_by_info(tmp_path):
    from typer.testing import CliRunner

    from twinforge.cli import app

    parts = sites(2, 1200)
    simulate(parts, tmp_path / "m", model="auto", params=QUICK["auto"], rounds=2, dp=True, stats_noise_multiplier=0.5)
    result = CliRunner().invoke(app, ["info", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "federated" in result.output and "epsilon=" in result.output and "2 rounds" in result.output


# ------------------------------------------------------------------------------------------ non-IID
def test_non_iid_sites_cover_the_union(tmp_path):
    rng = np.random.default_rng(1)
    big = table(600, seed=1)
    big["ward"] = rng.choice(["general", "surgery"], len(big))
    small = table(120, seed=2)
    small["ward"] = "geriatrics"  # only the small site sees this level
    small["age"] = rng.integers(75, 95, len(small))
    model = simulate(
        [big, small], tmp_path / "m", model="auto", params=QUICK["auto"], rounds=4, strategy="fedprox", seed=0
    )
    fake = model.sample(2000, seed=0)
    assert set(fake["ward"]) == {"general", "surgery", "geriatrics"}
    share = (fake["ward"] == "geriatrics").mean()
    assert 0.05 < share < 0.4  # true pooled share 120/720 = 0.17
    assert fake.loc[fake["ward"] == "geriatrics", "age"].mean() > fake.loc[fake["ward"] != "geriatrics", "age"].mean()
    assert model.fit_info_["federated"]["strategy"].startswith("fedprox")


def test_fedavgm_server_momentum(tmp_path):
    model = simulate(sites(2, 600), tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=2, strategy="fedavgm")
    assert model.fit_info_["federated"]["strategy"] == "fedavgm (momentum=0.9)"
    with pytest.raises(ParameterError, match="fedavgm cannot run with --dp central"):
        simulate(sites(2, 600), tmp_path / "c", model="tvae", strategy="fedavgm", dp="central")
    with pytest.raises(ParameterError, match="server_momentum"):
        simulate(sites(2, 600), tmp_path / "c", model="tvae", strategy="fedavgm", server_momentum=1.0)


# ------------------------------------------------------------------------------------------ faults
def test_a_site_with_another_schema_is_refused(tmp_path, caplog):
    good = sites(2, 400)
    renamed = table(200).rename(columns={"income": "salary"})
    model = simulate([*good, renamed], tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=1, min_sites=2)
    assert model.fit_info_["federated"]["sites"] == 2
    assert "salary" in caplog.text and "income" in caplog.text
    wrong_kind = table(200)
    wrong_kind["age"] = "old"
    with pytest.raises(MetadataError, match="age"):
        simulate([good[0], wrong_kind], tmp_path / "m2", model="tvae", params=QUICK["tvae"], rounds=1)
    assert not (tmp_path / "m2").exists()


def test_every_site_failing_is_a_clear_error(tmp_path, monkeypatch):
    def crash(stage, server_round):
        if stage == "train":
            raise ConnectionError("disk full")

    for name in ("site1", "site2"):
        monkeypatch.setitem(_apps._FAULTS, name, crash)
    with pytest.raises(DataError, match=r"no site returned a trained model.*disk full"):
        simulate(sites(2, 400), tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=1)


def test_a_site_dropping_out_mid_round_does_not_stop_training(tmp_path, monkeypatch):
    def slow(stage, server_round):
        if stage == "train" and server_round == 2:
            time.sleep(8)  # longer than the round timeout
            # then gone: its worker thread does no torch work that could outlive the test process
            raise ConnectionError("site too slow")

    def crash(stage, server_round):
        if stage == "train" and server_round == 3:
            raise ConnectionError("site went away")

    monkeypatch.setitem(_apps._FAULTS, "site3", slow)
    monkeypatch.setitem(_apps._FAULTS, "site2", crash)
    t0 = time.perf_counter()
    model = simulate(
        sites(3, 600), tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=3, min_sites=1, round_timeout=4
    )
    assert time.perf_counter() - t0 < 60
    assert [h["round"] for h in model.fit_info_["federated"]["history"]] == [1, 2, 3]
    assert len(model.sample(10)) == 10


def _hide_sites_until_training(monkeypatch, hidden: set[int], after_first_train: set[int] = frozenset()):
    """The in-process grid shows the ``hidden`` nodes only once training has started (they connect late) and
    drops the ``after_first_train`` nodes then (their SuperNode is gone)."""
    started = []
    real_ids, real_send = _apps.LocalGrid.get_node_ids, _apps.LocalGrid.send_and_receive

    def ids(self):
        gone = hidden if not started else set(after_first_train)
        return [n for n in real_ids(self) if n not in gone]

    def send(self, messages, *, timeout=None):
        messages = list(messages)
        started.extend(m for m in messages if m.metadata.message_type == "train")
        return real_send(self, messages, timeout=timeout)

    monkeypatch.setattr(_apps.LocalGrid, "get_node_ids", ids)
    monkeypatch.setattr(_apps.LocalGrid, "send_and_receive", send)


def test_a_site_joining_after_the_statistics_trains_from_the_next_round(tmp_path, monkeypatch):
    """A SuperNode that connects late, or rejoins after a restart (a new node id), is admitted to the next round;
    its schema is checked by its train handler, so a late site with other columns is refused there."""
    _hide_sites_until_training(monkeypatch, hidden={3, 4})
    renamed = table(200).rename(columns={"income": "salary"})
    recorder = _apps._Recorder(keep=True)
    model = simulate(
        [*sites(3, 600), renamed], tmp_path / "m", model="tvae", params=QUICK["tvae"], rounds=3, recorder=recorder
    )
    trained = {}
    for d, m in recorder.messages:
        if d == "in" and m.metadata.message_type == "train":
            trained.setdefault(m.metadata.src_node_id, []).append(m.error.reason if m.has_error() else "ok")
    assert trained[1] == trained[2] == ["ok"] * 3
    assert trained[3] == ["ok"] * 2  # rounds 2 and 3
    assert len(trained[4]) == 2 and all("salary" in r and "income" in r for r in trained[4])
    assert [h["round"] for h in model.fit_info_["federated"]["history"]] == [1, 2, 3]


def test_too_few_sites_for_longer_than_the_wait_stops_resumably(tmp_path, monkeypatch, caplog):
    """Flower's strategies wait for --min-sites sites without a limit; the server stops after --wait-sites
    seconds with a clear error, its finished rounds saved, and the same command resumes."""
    _hide_sites_until_training(monkeypatch, hidden=set(), after_first_train={2})
    kw = dict(model="tvae", params=QUICK["tvae"], rounds=3, min_sites=2, wait_sites_seconds=3)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"only 1 site\(s\) connected for 3 s, 2 needed.*resume"):
        simulate(sites(2, 400), tmp_path / "m", **kw)
    assert time.perf_counter() - t0 < 60
    monkeypatch.undo()
    caplog.set_level("INFO", logger="twinforge.federated")
    model = simulate(sites(2, 400), tmp_path / "m", **kw)
    assert "resuming from round 1" in caplog.text
    assert [h["round"] for h in model.fit_info_["federated"]["history"]] == [1, 2, 3]


def test_server_resumes_from_its_last_round(tmp_path, monkeypatch, caplog):
    real_save = _apps._save_checkpoint

    def save_then_die(settings, state, weights):
        real_save(settings, state, weights)
        if state["round"] == 2:
            raise KeyboardInterrupt  # the server process is killed right after round 2's checkpoint

    monkeypatch.setattr(_apps, "_save_checkpoint", save_then_die)
    kwargs = dict(model="tvae", params=QUICK["tvae"], rounds=3, seed=0)
    with pytest.raises(KeyboardInterrupt):
        simulate(sites(), tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()
    monkeypatch.setattr(_apps, "_save_checkpoint", real_save)
    recorder = _apps._Recorder(keep=True)
    caplog.set_level("INFO", logger="twinforge.federated")
    model = simulate(sites(), tmp_path / "m", recorder=recorder, **kwargs)
    assert "resuming from round 2" in caplog.text
    trains = [m for d, m in recorder.messages if d == "out" and m.metadata.message_type == "train"]
    assert len(trains) == 2  # one round, two sites
    assert not any(m.metadata.message_type.startswith("query") for _, m in recorder.messages)
    assert [h["round"] for h in model.fit_info_["federated"]["history"]] == [1, 2, 3]
    assert model.fit_info_["federated"]["sites"] == 2  # the sites that agreed, not those connected on resume


# ------------------------------------------------------------------------------------------ CLI
def test_cli_simulate_two_files_and_partition_by(tmp_path):
    from typer.testing import CliRunner

    from twinforge.cli import app

    runner = CliRunner()
    paths = []
    for i, part in enumerate(sites(2, 300)):
        paths.append(str(tmp_path / f"site{i}.csv"))
        part.to_csv(paths[-1], index=False)
    out = tmp_path / "m"
    args = ["federated", "simulate", "--data", *paths, "--rounds", "2", "--model", "tvae", "--out", str(out)]
    result = runner.invoke(app, [*args, "--param", "width=24", "-p", "latent_dim=4"])
    assert result.exit_code == 0, result.output
    assert "2 sites, 2 rounds" in result.output.replace("\n", " ")
    assert {k: twinforge.load(out).get_params()[k] for k in ("width", "latent_dim")} == {"width": 24, "latent_dim": 4}
    result = runner.invoke(app, ["sample", str(out), "-n", "30", "-o", str(tmp_path / "fake.csv")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "fake.csv")) == 30
    out2 = tmp_path / "m2"
    args = ["federated", "simulate", "--data", paths[0], "--partition-by", "tier", "--rounds", "1", "--out", str(out2)]
    result = runner.invoke(app, [*args, "--model", "tvae"])
    assert result.exit_code == 0, result.output
    assert twinforge.load(out2).fit_info_["federated"]["sites"] == 3
    # bad input: one clear message, exit 2
    for bad, words in [
        (["--data", paths[0]], "two or more sites"),
        (["--data", paths[0], "--partition-by", "nope"], "'nope'"),
        (["--data", *paths, "--strategy", "fedsgd"], "fedsgd"),
        (["--data", *paths, "--model", "copula"], "copula"),
        (["--data", *paths, "--model", "sequence"], "--time-key"),
        (["--data", *paths, "--model", "tvae", "--param", "nope=1"], "'nope'"),
    ]:
        result = runner.invoke(app, ["federated", "simulate", *bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2 and words in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "bad").exists()


def test_learning_rate_falls_over_the_rounds_and_resumes_where_it_was(tmp_path):
    cfg = {"rounds": 5, "lr-decay": 0.1, "first-round": 0}
    scales = [_apps._lr_scale(cfg, r) for r in range(1, 6)]
    assert scales[0] == pytest.approx(1.0) and scales[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in itertools.pairwise(scales))
    # a server resumed after round 2 sends first-round 2: its round 1 is the third
    assert _apps._lr_scale({**cfg, "first-round": 2}, 1) == pytest.approx(scales[2])
    assert _apps._lr_scale({"rounds": 5, "lr-decay": 1.0}, 3) == 1.0
    # by default it falls without DP only: DP's noisy updates need every step they can take
    assert _apps.FederatedSettings().lr_final == 0.1
    assert _apps.FederatedSettings(dp="local", epsilon=3.0).lr_final == 1.0
    assert _apps.FederatedSettings(dp="central", lr_decay=0.5).lr_final == 0.5
    with pytest.raises(ParameterError, match="lr_decay"):
        simulate(sites(), tmp_path / "m", model="tvae", params=QUICK["tvae"], lr_decay=0.0)


def test_auto_sites_take_equal_local_steps_whatever_their_size():
    from twinforge.federated._adapters import ADAPTERS

    auto, adapter = twinforge.create("auto"), ADAPTERS["auto"]
    target = adapter.local_steps(auto, 400, 5)  # a site of 400 rows: batch 32, 13 steps per pass
    assert target == 65
    assert adapter.passes_for(auto, 72, target) == 22  # 3 steps per pass
    assert adapter.passes_for(auto, 825, target) == 5  # batch 64, 13 steps per pass
    assert adapter.passes_for(auto, 100_000, target) == 1


@pytest.mark.parametrize("model", ["tvae", "ctgan", "ddpm"])
def test_sites_take_equal_local_steps_whatever_their_size(tmp_path, monkeypatch, model):
    """A site of 60 rows and one of 400 take the same steps per round: those of a site of average size."""
    from twinforge.federated._adapters import ADAPTERS

    adapter = ADAPTERS[model]
    real, taken = type(adapter).train, []

    def spy(self, m, arrays, epochs, rng, dp=None, steps=None):
        out = real(self, m, arrays, epochs, rng, dp=dp, steps=steps)
        taken.append((len(next(iter(arrays.values()))), out["steps"]))
        return out

    monkeypatch.setattr(type(adapter), "train", spy)
    df = table(460)
    parts = [df.iloc[:60].reset_index(drop=True), df.iloc[60:].reset_index(drop=True)]
    fitted = simulate(parts, tmp_path / "m", model=model, params=QUICK[model], rounds=2, local_epochs=2, seed=0)
    expected = adapter.local_steps(fitted, 230, 2)
    assert fitted.fit_info_["federated"]["local_steps"] == expected
    assert sorted(n for n, _ in taken) == [60, 60, 400, 400]
    assert {s for _, s in taken} == {expected}
    # one pass per local epoch would have given the large site several times the small one's steps
    assert adapter.steps_per_pass(fitted, 400) >= 4 * adapter.steps_per_pass(fitted, 60)
