"""A real deployment on 127.0.0.1: a Flower SuperLink (``twinforge federated server``'s) and two SuperNodes
started by ``twinforge federated client``, training a few rounds. Loopback only; every wait has a timeout.

Each Flower message starts a ClientApp process that imports torch, so this takes a minute or two on 2 cores.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flwr")

import twinforge
from twinforge.cli import app
from twinforge.federated import FederatedSettings
from twinforge.federated._deploy import _stop, free_port, serve

from .conftest import make_mixed

TWINFORGE = Path(sys.executable).parent / "twinforge"


@pytest.mark.deploy
@pytest.mark.skipif(not TWINFORGE.exists(), reason="the twinforge script is not installed in this environment")
def test_superlink_and_two_supernodes_train_a_model(tmp_path):
    df = make_mixed(300).drop(columns=["joined", "email"])
    paths = []
    for i, part in enumerate((df.iloc[:180], df.iloc[180:])):
        paths.append(tmp_path / f"ward{i}.csv")
        part.to_csv(paths[-1], index=False)
    meta = twinforge.Metadata.detect(twinforge.read_table(paths[0]))
    port = free_port()
    clients, logs = [], []
    try:
        for p in paths:
            logs.append(open(tmp_path / f"{p.stem}.log", "w"))  # noqa: SIM115 - closed below
            cmd = [str(TWINFORGE), "federated", "client", "--data", str(p), "--server", f"127.0.0.1:{port}"]
            clients.append(subprocess.Popen(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, start_new_session=True))
        settings = FederatedSettings(
            out=str(tmp_path / "model"),
            metadata=meta.to_dict(),
            model="tvae",
            params={"width": 32, "latent_dim": 8, "batch_size": 100},
            rounds=2,
            min_sites=2,
            wait_sites_seconds=180,
            round_timeout=240,
        )
        log = io.StringIO()
        out = serve(settings, host="127.0.0.1", port=port, log=log, run_timeout=600)
    finally:
        for c in clients:
            _stop(c, grace=30)
        for f in logs:
            f.close()
    model = twinforge.load(out)
    fed = model.fit_info_["federated"]
    assert fed["sites"] == 2 and [h["round"] for h in fed["history"]] == [1, 2], log.getvalue()[-3000:]
    assert model.fit_info_["rows"] == 300
    assert len(model.sample(20)) == 20
    assert not (tmp_path / ".model.federated-run").exists()


@pytest.mark.deploy
@pytest.mark.skipif(not TWINFORGE.exists(), reason="the twinforge script is not installed in this environment")
def test_superlink_and_two_supernodes_train_a_sequence_model(tmp_path):
    from .test_federated_sequence import fleet, halves

    paths = []
    for i, part in enumerate(halves(fleet(units=12, steps=15))):
        paths.append(tmp_path / f"fleet{i}.csv")
        part.to_csv(paths[-1], index=False)
    meta = twinforge.Metadata.detect(twinforge.read_table(paths[0]), entity_key="unit", time_index="t")
    meta.to_json(tmp_path / "schema.json")
    port = free_port()
    clients, logs = [], []
    try:
        for p in paths:
            logs.append(open(tmp_path / f"{p.stem}.log", "w"))  # noqa: SIM115 - closed below
            cmd = [str(TWINFORGE), "federated", "client", "--data", str(p), "--server", f"127.0.0.1:{port}"]
            clients.append(subprocess.Popen(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, start_new_session=True))
        cmd = [str(TWINFORGE), "federated", "server", "--metadata", str(tmp_path / "schema.json")]
        cmd += ["--out", str(tmp_path / "fleet"), "-m", "sequence", "--static", "group,size", "--rounds", "2"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--wait-sites", "180", "--round-timeout", "240"]
        server = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        for c in clients:
            _stop(c, grace=30)
        for f in logs:
            f.close()
    assert server.returncode == 0, server.stdout[-2000:] + server.stderr[-3000:]
    model = twinforge.load(tmp_path / "fleet")
    fed = model.fit_info_["federated"]
    assert fed["sites"] == 2 and [h["round"] for h in fed["history"]] == [1, 2]
    assert model.fit_info_["entities"] == 12 and model.layout_["static_columns"] == ["group", "size"]
    assert model.sample(entities=3, seed=0)["unit"].nunique() == 3


def test_client_and_server_refuse_bad_arguments(tmp_path):
    from typer.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(app, ["federated", "client", "--data", str(tmp_path / "nope.csv"), "--server", "x:1"])
    assert result.exit_code == 2 and "nope.csv" in result.output
    good = tmp_path / "a.csv"
    make_mixed(50).to_csv(good, index=False)
    result = runner.invoke(app, ["federated", "client", "--data", str(good), "--server", "localhost"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output
    result = runner.invoke(
        app, ["federated", "server", "--metadata", str(tmp_path / "none.json"), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2 and "none.json" in result.output
