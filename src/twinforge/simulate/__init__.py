"""Simulated populations with known ground truth: a wind-turbine fleet and a patient population.

Both return a :class:`Simulation` with the same shape: ``events`` (a long table of per-entity time series with a
``failure`` channel), ``static`` (one row per entity) and ``hidden`` (the parameters each entity was simulated
with, which the data never show directly). They are seeded and deterministic, and serve as a data source for the
digital-twin demo, benchmarks and tests.

- :func:`turbines`: physics-inspired and vectorised with numpy (1,000 units x 500 steps in about a second);
- :func:`patients`: agent-based, on Mesa (``pip install "twinforge[sim]"``).

Examples
--------
>>> import twinforge.simulate as sim
>>> fleet = sim.turbines(n_units=3, n_steps=10, seed=1)
>>> fleet.entity_key, fleet.time_key, len(fleet.static)
('unit_id', 't', 3)
"""

from twinforge.simulate._common import Simulation
from twinforge.simulate._patients import patients
from twinforge.simulate._turbines import turbines

__all__ = ["Simulation", "patients", "turbines"]
