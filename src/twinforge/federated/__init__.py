"""Federated synthesis on Flower: one generator trained across data holders who never share a row.

Every site keeps its table; the sites agree on one metadata (the schema) and, from per-site aggregates only
(histograms on server-fixed grids, level counts; noised when DP is on), on one transform. Then Flower's FedAvg
or FedProx trains the model from each site's local epochs, optionally with Flower's client-side clipping and
central Gaussian noise (DP-FedAvg) and a Rényi-DP accountant; the result is an ordinary twinforge model directory.
The sequence model (per-entity time series) trains the same way with whole entities per site (``_sequence``).

- :func:`simulate`: every site in this process (the same ClientApp/ServerApp, through :class:`LocalGrid`);
- ``twinforge federated server`` / ``client``: a real deployment on Flower's SuperLink and SuperNodes.

Needs the ``federated`` extra: ``pip install -c constraints.txt -e ".[federated]"``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FederatedSettings", "LocalGrid", "make_client_app", "make_server_app", "run_server", "simulate"]


def _require_flwr() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        from twinforge.errors import ParameterError

        raise ParameterError(
            'federated training needs Flower: pip install -c constraints.txt -e ".[federated]"'
        ) from None


def __getattr__(name: str) -> Any:
    if name in __all__:
        _require_flwr()
        from twinforge.federated import _apps

        return getattr(_apps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
