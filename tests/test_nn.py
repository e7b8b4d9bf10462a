"""The shared torch pieces: device choice, seeding without global state, weights as arrays, the training loop."""

import numpy as np
import pytest
import torch

from twinforge import ParameterError
from twinforge.models._nn import (
    MLP,
    Adam,
    check_training_params,
    resolve_device,
    seeded,
    state_from_arrays,
    state_to_arrays,
    train_loop,
)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ParameterError, match="device must be"):
        resolve_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_seeded_is_reproducible_and_leaves_global_state_alone():
    before = torch.random.get_rng_state()
    with seeded(np.random.default_rng(3)):
        a = torch.randn(5)
    with seeded(np.random.default_rng(3)) as gen:
        b = torch.randn(5)
        c = torch.randn(5, generator=gen)
    assert torch.equal(a, b) and not torch.equal(b, c)
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_adam_gives_torch_optims_numbers(decoupled, fused):
    """The same updates as torch.optim.Adam (L2 weight decay) or AdamW (decoupled), with a learning rate changed
    between steps and a tensor that misses a step."""
    torch.manual_seed(0)
    a, b = MLP(6, 8, 2, 3), MLP(6, 8, 2, 3)
    b.load_state_dict(a.state_dict())
    start = a.net[0].weight.detach().clone()
    ours = Adam(a.parameters(), 1e-2, betas=(0.5, 0.9), weight_decay=1e-2, decoupled=decoupled, fused=fused)
    ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)(
        b.parameters(), 1e-2, betas=(0.5, 0.9), weight_decay=1e-2, fused=fused
    )
    x = torch.randn(32, 6)
    for step in range(5):
        for net, opt in ((a, ours), (b, ref)):
            opt.zero_grad(set_to_none=True)
            net(x).pow(2).mean().backward()
            if step == 2:  # the last layer misses this step: its own step count falls behind
                net.net[-1].weight.grad = None
            opt.step()
            opt.param_groups[0]["lr"] = 1e-2 / (step + 2)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(a.net[0].weight, start)


def test_state_round_trip_is_exact():
    with seeded(np.random.default_rng(0)):
        net = MLP(4, 8, 2, 3)
    arrays = state_to_arrays(net)
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    other = state_from_arrays(MLP(4, 8, 2, 3), arrays)
    x = torch.randn(6, 4)
    assert torch.equal(net(x), other(x))
    with pytest.raises(RuntimeError):
        state_from_arrays(MLP(4, 9, 2, 3), arrays)


def test_train_loop_stops_early_and_restores_best_weights():
    net = torch.nn.Linear(1, 1)
    vals = iter([3.0, 1.0, 2.0, 2.5, 2.7, 9.0, 9.0])
    weights = []

    def epoch(i):
        with torch.no_grad():
            net.weight.fill_(float(i))
        weights.append(i)
        return {"loss": float(i)}

    result = train_loop(
        module=net,
        epoch=epoch,
        validate=lambda: next(vals),
        epochs=7,
        patience=3,
        max_minutes=None,
        progress=False,
        description="t",
    )
    assert result.stopped == "early_stopping" and result.epochs == 5 and result.best_epoch == 2
    assert net.weight.item() == 1.0  # the weights of the best epoch
    assert [h["validation"] for h in result.history] == [3.0, 1.0, 2.0, 2.5, 2.7]


def test_train_loop_min_epochs_ignores_the_warm_up():
    """A validation loss that looks best during the warm-up is neither kept nor counted for patience."""
    net = torch.nn.Linear(1, 1)
    vals = iter([0.1, 5.0, 4.0, 3.0, 3.5, 3.6, 9.0])

    def epoch(i):
        with torch.no_grad():
            net.weight.fill_(float(i))
        return {"loss": float(i)}

    result = train_loop(
        module=net,
        epoch=epoch,
        validate=lambda: next(vals),
        epochs=7,
        patience=2,
        max_minutes=None,
        progress=False,
        description="t",
        min_epochs=3,
    )
    assert result.best_epoch == 4 and net.weight.item() == 3.0  # epoch 1's 0.1 came before the warm-up ended
    assert result.stopped == "early_stopping" and result.epochs == 6


def test_train_loop_time_budget_and_custom_stop():
    net = torch.nn.Linear(1, 1)
    result = train_loop(
        module=net,
        epoch=lambda i: {"loss": 1.0},
        validate=None,
        epochs=100,
        patience=1,
        max_minutes=1e-9,
        progress=True,
        description="t",
    )
    assert result.stopped == "time_budget" and result.epochs == 1
    result = train_loop(
        module=net,
        epoch=lambda i: {"loss": 1.0},
        validate=None,
        epochs=100,
        patience=1,
        max_minutes=None,
        progress=False,
        description="t",
        should_stop=lambda: "privacy_budget",
    )
    assert result.stopped == "privacy_budget" and result.to_dict()["epochs"] == 1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"patience": True}, "patience"),
        ({"max_minutes": -1}, "max_minutes"),
        ({"validation_share": 0.9}, "validation_share"),
    ],
)
def test_check_training_params(params, match):
    good = {"epochs": 5, "batch_size": 64, "max_minutes": None, "patience": 3, "validation_share": 0.1}
    check_training_params(**good)
    with pytest.raises(ParameterError, match=match):
        check_training_params(**{**good, **params})
