"""A real deployment on 127.0.0.1: a Flower SuperLink (``twinforge federated server``'s) and two SuperNodes
started by ``twinforge federated client``, training a few rounds. Loopback only; every wait has a timeout.

Each Flower message starts a ClientApp process that imports torch, so this takes a minute or two on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from typer.testing import CliRunner

import twinforge
from twinforge.cli import app
from twinforge.federated._deploy import _stop, free_port

from .conftest import make_mixed

TWINFORGE = Path(sys.executable).parent / "twinforge"


@pytest.mark.deploy
@pytest.mark.skipif(not TWINFORGE.exists(), reason="the twinforge script is not installed in this environment")
def test_superlink_and_two_supernodes_train_resume_after_a_server_restart_and_report_dp(tmp_path):
    """The README's deployment, step by step, with local DP: the server is stopped (SIGTERM) after its first
    round, stops its SuperLink, and the same command resumes; the sites rejoin by themselves."""
    from .test_federated import sites

    paths = []
    for i, part in enumerate(sites(2, 1200)):
        paths.append(tmp_path / f"ward{i}.csv")
        part.to_csv(paths[-1], index=False)
    runner = CliRunner()
    schema = tmp_path / "schema.json"
    assert runner.invoke(app, ["metadata", str(paths[0]), "--out", str(schema)]).exit_code == 0
    params = ["-p", "width=32", "-p", "latent_dim=8", "-p", "batch_size=100"]
    port = free_port()
    server_cmd = [str(TWINFORGE), "federated", "server", "--metadata", str(schema), "--out", str(tmp_path / "model")]
    server_cmd += ["--model", "tvae", *params, "--rounds", "3", "--dp", "local", "--epsilon", "8"]
    server_cmd += ["--delta", "1e-4", "--host", "127.0.0.1", "--port", str(port), "--wait-sites", "180"]
    server_cmd += ["--round-timeout", "240"]
    state = tmp_path / ".model.federated-checkpoint" / "state.json"
    clients, logs = [], []
    try:
        for p in paths:
            logs.append(open(tmp_path / f"{p.stem}.log", "w"))  # noqa: SIM115 - closed below
            cmd = [str(TWINFORGE), "federated", "client", "--data", str(p), "--server", f"127.0.0.1:{port}"]
            clients.append(subprocess.Popen(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, start_new_session=True))
        first = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 400
        while not (state.is_file() and json.loads(state.read_text())["round"] >= 1):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0][-3000:]
            time.sleep(0.2)
        first.send_signal(signal.SIGTERM)  # stopped after round 1 (a crash, a reboot)
        first.wait(60)
        assert first.returncode != 0
        with pytest.raises(OSError):  # its SuperLink stopped with it
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert not (tmp_path / "model").exists()
        second = subprocess.run(server_cmd, capture_output=True, text=True, timeout=600)
    finally:
        for c in clients:
            _stop(c, grace=30)
        for f in logs:
            f.close()
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "resuming from round" in second.stderr
    assert all("joining" in (tmp_path / f"{p.stem}.log").read_text().split("Ctrl-C to stop", 1)[1] for p in paths)
    model = twinforge.load(tmp_path / "model")
    fed = model.fit_info_["federated"]
    assert fed["sites"] == 2 and [h["round"] for h in fed["history"]] == [1, 2, 3]
    privacy = fed["privacy"]
    assert privacy["mode"] == "local" and 4 < privacy["epsilon"] <= 8.0
    assert set(privacy["sites"]) == {"ward0", "ward1"}  # by name: the rejoined SuperNodes have new node ids
    assert not (tmp_path / ".model.federated-run").exists() and not state.exists()
    # the README's next steps: info shows the spent budget, sample writes rows
    shown = runner.invoke(app, ["info", str(tmp_path / "model")])
    assert shown.exit_code == 0 and f"max epsilon={privacy['epsilon']:g}" in shown.output
    assert "not differentially private" not in shown.output
    fake = tmp_path / "fake.csv"
    assert runner.invoke(app, ["sample", str(tmp_path / "model"), "-n", "40", "-o", str(fake)]).exit_code == 0
    assert len(twinforge.read_table(fake)) == 40


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


def test_the_server_terminal_gets_a_compact_log():
    from twinforge.federated._deploy import _compact

    wait = "INFO: Waiting for nodes to connect: 1 connected (minimum required: 2).\n"
    lines = ["start\n", wait, wait, wait, "config " + "x" * 5000 + "\n", wait]
    text = "".join(_compact(lines))
    assert text.count("Waiting for nodes") == 2 and "(the line above 2 more times)" in text
    assert "(4,007 more characters)" in text and len(text) < 1300


def test_stopping_a_child_that_ended_stops_what_it_left_running():
    """A SuperNode refused by a new SuperLink exits by itself; its ClientApp (same process group) must not live on."""
    child = subprocess.Popen(
        ["bash", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    left = int(child.stdout.readline())
    child.wait(10)
    _stop(child, grace=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(left, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the process the child left running is still alive")
    child.stdout.close()


def test_client_and_server_refuse_bad_arguments(tmp_path):
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
