"""Differential privacy for twinforge's models: one accountant, DP column domains, and DP-SGD via Opacus.

A model with ``epsilon`` set (``twinforge.create("auto", epsilon=1.0)``, ``twinforge fit ... --epsilon 1``) fits
under ``(epsilon, delta)``-differential privacy, with add/remove-one-row neighbours:

1. :func:`~twinforge.privacy._domain.private_domain` spends a share of the budget (for the DP-SGD models a tenth,
   up to three tenths where a tenth would leave the value ranges in the noise: wide tables, small epsilon)
   on the column domains and one-column histograms, and builds a public table from them; every encoder the
   model fits (bounds, quantiles, mixture modes, category sets and frequencies) reads that table, not the data;
2. :class:`~twinforge.privacy._dpsgd.DPSGD` trains the network on the real rows with DP-SGD, the noise
   calibrated to spend exactly the rest of the budget over the planned steps; early stopping on a validation
   split is disabled (its loss would be a data-dependent step outside the accountant): training runs the planned
   epochs, or fewer when ``max_minutes`` ends it (spending less);
3. :class:`~twinforge.privacy._ledger.PrivacyLedger` adds up the RDP curves of both and stores the spent epsilon
   and delta with the model (``model.fit_info_["privacy"]``, shown by ``twinforge info``).

The RDP accountant (:mod:`twinforge.privacy._accountant`) follows Mironov et al. 2019 and gives the same epsilon
as Opacus's ``RDPAccountant`` (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from twinforge.privacy._accountant import (
    ORDERS,
    calibrate_noise,
    epsilon_from_rdp,
    gaussian_rdp,
    sampled_gaussian_rdp,
)
from twinforge.privacy._ledger import PrivacyLedger, check_budget, default_delta

__all__ = [
    "DOMAIN_SHARE",
    "DOMAIN_SHARE_MAX",
    "ORDERS",
    "PrivacyLedger",
    "begin_private_fit",
    "calibrate_noise",
    "check_budget",
    "default_delta",
    "dp_sgd",
    "end_private_fit",
    "epsilon_from_rdp",
    "gaussian_rdp",
    "is_private",
    "public_arrays",
    "sampled_gaussian_rdp",
]

DOMAIN_SHARE = 0.1  # share of epsilon the DP-SGD models spend on column domains and histograms ...
DOMAIN_SHARE_MAX = 0.3  # ... raised up to this where the ranges need it (see twinforge.privacy._domain)


def is_private(model: Any) -> bool:
    """True when the model has ``epsilon`` set (it fits under differential privacy)."""
    return getattr(model, "epsilon", None) is not None


def begin_private_fit(
    model: Any, df: pd.DataFrame, meta: Any, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Start a DP fit: check the budget, open the ledger, release the domains. ``(public table, mapped rows)``."""
    from twinforge.privacy._domain import private_domain

    n = len(df)
    check_budget(model.epsilon, model.delta, n)
    delta = float(model.delta) if model.delta is not None else default_delta(n)
    ledger = PrivacyLedger(float(model.epsilon), delta, n)
    fixed = getattr(model, "_dp_domain_share", None)  # a model may fix its share (mst: half)
    share, top = (float(fixed), None) if fixed is not None else (DOMAIN_SHARE, DOMAIN_SHARE_MAX)
    public, mapped, details = private_domain(df, meta, ledger, share, rng, max_share=top)
    model._privacy = {"ledger": ledger, "domain": details}
    return public, mapped


def public_arrays(model: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a model may fit its encoders on: the public table's arrays under DP, else ``arrays`` themselves."""
    state = getattr(model, "_privacy", None)
    return state["public_arrays"] if state is not None else arrays


def dp_sgd(model: Any, *, n_rows: int, batch_size: int, steps: int, rng: np.random.Generator) -> Any:
    """A :class:`~twinforge.privacy._dpsgd.DPSGD` for the model's DP fit, or None when it is not private."""
    state = getattr(model, "_privacy", None)
    if state is None:
        return None
    import torch

    from twinforge.privacy._dpsgd import DPSGD

    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    dp = DPSGD(state["ledger"], n_rows=n_rows, batch_size=batch_size, steps=steps, generator=gen)
    state["dpsgd"] = dp
    return dp


def end_private_fit(model: Any) -> dict[str, Any] | None:
    """Close the ledger; returns its report (stored in ``fit_info_["privacy"]``), None when not private."""
    state = getattr(model, "_privacy", None)
    if state is None:
        return None
    del model._privacy
    report = state["ledger"].report()
    report["domain"] = state["domain"]["columns"]
    return report
