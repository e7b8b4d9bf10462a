"""The Flower App components a deployment names (``twinforge.federated.app:server_app`` / ``:client_app``).

``twinforge federated server`` writes a Flower App whose ``pyproject.toml`` points here; the SuperLink and the
SuperNodes import this module in the current environment (runtime dependency installation is off). The server
reads its settings from the file named by the run config's ``settings-file``; each site reads its table from
the node config's ``data-path``.
"""

from __future__ import annotations

from twinforge.federated._apps import make_client_app, make_server_app

server_app = make_server_app()
client_app = make_client_app()
