"""A physics-inspired wind-turbine fleet: wind, load, heat, vibration, wear, failures and maintenance.

Every unit has static attributes (turbine model, site, rated power, hub height, installation year) and hidden
parameters of its own (wear rate, thermal gain, vibration gain, failure threshold). Per time step, for all units at
once (numpy arrays over units; a loop over time only):

- wind speed ``v = v_site * seasonal(day) * diurnal(hour) * exp(0.35 z)``, with ``z`` an AR(1) process
  (``z_t = 0.85 z_{t-1} + sqrt(1 - 0.85^2) e_t``), so wind is autocorrelated and follows day and season;
- load fraction from a cubic power curve: ``clip(((v - 3) / (v_rated - 3))^3, 0, 1)``, 0 above the 25 m/s
  cut-out or while the unit is down; power ``= rated * load * (1 - 0.15 min(wear, 1))`` plus noise;
- gearbox temperature relaxes towards ``ambient + thermal_gain * load * (1 + 0.4 wear)`` (first-order lag, rate 0.35);
- vibration ``= (0.8 + vibration_gain * wear^2) * (0.4 + 0.6 load)`` times log-normal noise: it grows with wear;
- wear grows by ``wear_rate * (0.3 + load^2) * shock`` while running (``shock`` log-normal): heavy load wears faster;
- a failure happens when wear passes the unit's threshold, or at random with hazard ``1e-4 exp(3 wear)``; the unit
  is then down for repair for 4 to 12 steps and its wear resets near 0 (component replaced). Scheduled maintenance
  every ``maintenance_interval`` steps (each unit with its own phase) takes one step and removes 40% of the wear.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from twinforge.simulate._common import (
    Simulation,
    check_int,
    check_positive,
    check_rate,
    check_seed,
    thin,
    time_column,
)

# model -> rated power (kW), rated wind speed (m/s), hub height (m), wear factor
MODELS = {
    "T1500": (1500.0, 12.0, 80.0, 1.0),
    "T2000": (2000.0, 12.5, 95.0, 1.3),
    "T3000": (3000.0, 13.0, 110.0, 0.8),
}
# site -> mean wind speed (m/s), mean ambient temperature (degC)
SITES = {"coastal": (8.5, 12.0), "plains": (7.0, 15.0), "hills": (7.8, 8.0)}
CHANNELS = ["wind_speed", "ambient_temp", "power_kw", "gearbox_temp", "vibration", "status", "maintenance", "failure"]
SENSORS = ["wind_speed", "ambient_temp", "power_kw", "gearbox_temp", "vibration"]
MEAN_WEAR_RATE = 0.0065  # per step at unit stress: a typical unit fails after a few hundred steps


def turbines(
    n_units: int = 100,
    n_steps: int = 500,
    *,
    seed: int = 0,
    steps_per_day: int = 4,
    start: Any = None,
    wear_scale: float = 1.0,
    maintenance_interval: int = 120,
    missing_rate: float = 0.0,
    drop_rate: float = 0.0,
) -> Simulation:
    """Simulate a wind-turbine fleet whose units wear, fail and are repaired.

    Parameters
    ----------
    n_units : int, default 100
        Number of turbines.
    n_steps : int, default 500
        Time steps per turbine.
    seed : int, default 0
        Seed of every random draw: the same arguments give the same tables.
    steps_per_day : int, default 4
        Steps per day (4 = one measurement every 6 hours); sets the daily and seasonal cycles.
    start : str or Timestamp, optional
        If given, the time column ``t`` holds timestamps from ``start`` (one step = ``24 / steps_per_day`` hours);
        otherwise it holds the integer step 0, 1, 2, ...
    wear_scale : float, default 1.0
        Multiplies every unit's wear rate: above 1, more failures.
    maintenance_interval : int, default 120
        Steps between scheduled maintenance visits of a unit; 0 for none.
    missing_rate : float, default 0.0
        Share of sensor readings lost (NaN), independently per channel.
    drop_rate : float, default 0.0
        Share of rows not recorded at all (irregular sampling, variable lengths); failure rows are always kept.

    Returns
    -------
    Simulation
        ``events`` (``unit_id``, ``t``, wind_speed, ambient_temp, power_kw, gearbox_temp, vibration, status,
        maintenance, failure), ``static`` (``unit_id``, model, site, rated_power_kw, hub_height_m, install_year),
        ``hidden`` (``unit_id``, wear_rate, thermal_gain, vibration_gain, failure_threshold) and ``states``
        (``unit_id``, ``t``, wear).

    Raises
    ------
    ParameterError
        A count that is not a positive integer, or a rate outside [0, 1).

    Examples
    --------
    >>> import twinforge.simulate as sim
    >>> fleet = sim.turbines(n_units=5, n_steps=50, seed=0)
    >>> fleet.events.shape, fleet.static.shape, list(fleet.hidden.columns)[:2]
    ((250, 10), (5, 6), ['unit_id', 'wear_rate'])
    """
    n_units = check_int("n_units", n_units, 1)
    n_steps = check_int("n_steps", n_steps, 1)
    seed = check_seed(seed)
    steps_per_day = check_int("steps_per_day", steps_per_day, 1, 1440)
    wear_scale = check_positive("wear_scale", wear_scale)
    maintenance_interval = check_int("maintenance_interval", maintenance_interval, 0)
    missing_rate = check_rate("missing_rate", missing_rate)
    drop_rate = check_rate("drop_rate", drop_rate)
    time_column(n_steps, start, f"{24 / steps_per_day}h", "turbines")  # checks start
    params = {
        "n_units": n_units, "n_steps": n_steps, "seed": seed, "steps_per_day": steps_per_day,
        "start": None if start is None else str(start), "wear_scale": wear_scale,
        "maintenance_interval": maintenance_interval, "missing_rate": missing_rate, "drop_rate": drop_rate,
    }  # fmt: skip
    return _simulate(params)


def _simulate(params: dict[str, Any], branch: tuple[int, np.random.Generator] | None = None) -> Simulation:
    """The simulation itself, from checked ``params``. ``branch=(k, generator)`` draws every random number of
    steps ``k`` onward from ``generator`` instead: the same fleet up to step ``k``, an independent future after
    it (the benchmark's hindsight oracle continues the true state, hidden parameters and all, this way)."""
    n_units, n_steps, seed = params["n_units"], params["n_steps"], params["seed"]
    steps_per_day, start, wear_scale = params["steps_per_day"], params["start"], params["wear_scale"]
    maintenance_interval = params["maintenance_interval"]
    missing_rate, drop_rate = params["missing_rate"], params["drop_rate"]
    times = time_column(n_steps, start, f"{24 / steps_per_day}h", "turbines")
    rng = np.random.default_rng(seed)

    # static attributes
    model_names = np.array(list(MODELS))
    site_names = np.array(list(SITES))
    model = rng.choice(model_names, n_units, p=[0.4, 0.35, 0.25])
    site = rng.choice(site_names, n_units, p=[0.35, 0.4, 0.25])
    spec = np.array([MODELS[m] for m in model])
    rated, rated_ws, hub, wear_factor = spec.T
    site_spec = np.array([SITES[s] for s in site])
    site_ws, site_temp = site_spec.T
    install_year = rng.integers(2008, 2023, n_units)
    ids = np.array([f"WT{i:05d}" for i in range(n_units)])

    # hidden parameters of each unit
    age_factor = 1.0 + 0.02 * (2023 - install_year)
    wear_rate = MEAN_WEAR_RATE * wear_scale * wear_factor * age_factor * rng.lognormal(0.0, 0.45, n_units)
    thermal_gain = np.clip(rng.normal(35.0, 6.0, n_units), 10.0, None)
    vibration_gain = rng.lognormal(np.log(4.0), 0.3, n_units)
    threshold = np.clip(rng.normal(1.0, 0.08, n_units), 0.7, None)
    ws_exposure = rng.lognormal(0.0, 0.08, n_units)  # a unit's place in the site's wind field
    # day 0 is the start date (1 January without one): the seasons follow the calendar
    first_day = 0 if start is None else pd.Timestamp(start).dayofyear - 1
    season_phase = 2 * np.pi * first_day / 365.0
    maint_phase = rng.integers(0, max(maintenance_interval, 1), n_units)

    # state
    z = rng.normal(0.0, 1.0, n_units)
    wear = rng.uniform(0.0, 0.6, n_units) * threshold
    down = np.zeros(n_units, dtype="int64")
    gear = site_temp + 5.0
    shape = (n_steps, n_units)
    out = {c: np.empty(shape) for c in ("wind_speed", "ambient_temp", "power_kw", "gearbox_temp", "vibration")}
    status = np.empty(shape, dtype="int8")  # 0 running, 1 idle, 2 repair, 3 maintenance
    maint = np.zeros(shape, dtype="int8")
    failure = np.zeros(shape, dtype="int8")
    wear_out = np.empty(shape)
    rho = 0.85
    for k in range(n_steps):
        r = rng if branch is None or k < branch[0] else branch[1]
        day = k / steps_per_day
        hour = 24.0 * (k % steps_per_day) / steps_per_day
        seasonal = 1.0 + 0.2 * np.sin(2 * np.pi * day / 365.0 + season_phase)
        diurnal = 1.0 + 0.12 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        z = rho * z + np.sqrt(1 - rho**2) * r.normal(0.0, 1.0, n_units)
        ws = site_ws * ws_exposure * seasonal * diurnal * np.exp(0.35 * z - 0.06)
        ambient = (
            site_temp
            - 8.0 * np.cos(2 * np.pi * day / 365.0 + season_phase)
            + 4.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
            + r.normal(0.0, 1.0, n_units)
        )
        in_maint = (maintenance_interval > 0) & ((k + maint_phase) % max(maintenance_interval, 1) == 0) & (down == 0)
        running = (down == 0) & ~in_maint
        load = np.clip(((ws - 3.0) / (rated_ws - 3.0)) ** 3, 0.0, 1.0) * (ws < 25.0) * (ws > 3.0)
        load = np.where(running, load, 0.0)
        noise = r.normal(0.0, 0.01, n_units) * rated * (load > 0)
        power = rated * load * (1.0 - 0.15 * np.minimum(wear, 1.0)) + noise
        target = ambient + thermal_gain * load * (1.0 + 0.4 * wear)
        gear = gear + 0.35 * (target - gear) + r.normal(0.0, 0.7, n_units)
        vib = (0.8 + vibration_gain * wear**2) * (0.4 + 0.6 * load) * r.lognormal(0.0, 0.1, n_units)
        vib = np.where(running & (load > 0), vib, 0.1 * r.lognormal(0.0, 0.2, n_units))

        shock = r.lognormal(-0.045, 0.3, n_units)
        wear = wear + np.where(running, wear_rate * (0.3 + load**2) * shock, 0.0)
        hazard = 1e-4 * np.exp(3.0 * wear)
        fails = running & ((wear >= threshold) | (r.random(n_units) < hazard))
        repair_len = r.integers(4, 13, n_units)

        st = np.where(running, np.where(load > 0, 0, 1), np.where(in_maint, 3, 2)).astype("int8")
        status[k], maint[k], failure[k] = st, in_maint, fails
        out["wind_speed"][k], out["ambient_temp"][k], out["power_kw"][k] = ws, ambient, np.maximum(power, 0.0)
        out["gearbox_temp"][k], out["vibration"][k] = gear, vib
        wear_out[k] = wear

        # after the step: repairs finish, failed units go down, maintenance removes some wear
        finished = down == 1
        down = np.maximum(down - 1, 0)
        wear = np.where(finished, r.uniform(0.0, 0.05, n_units), wear)
        down = np.where(fails, repair_len, down)
        wear = np.where(in_maint, 0.6 * wear, wear)

    status_names = np.array(["running", "idle", "repair", "maintenance"], dtype=object)
    events = pd.DataFrame(
        {
            "unit_id": np.repeat(ids, n_steps),
            "t": np.tile(times, n_units),
            "wind_speed": out["wind_speed"].T.ravel().round(2),
            "ambient_temp": out["ambient_temp"].T.ravel().round(2),
            "power_kw": out["power_kw"].T.ravel().round(1),
            "gearbox_temp": out["gearbox_temp"].T.ravel().round(2),
            "vibration": out["vibration"].T.ravel().round(3),
            "status": status_names[status.T.ravel()],
            "maintenance": maint.T.ravel().astype("int64"),
            "failure": failure.T.ravel().astype("int64"),
        }
    )
    states = pd.DataFrame({"unit_id": events["unit_id"], "t": events["t"], "wear": wear_out.T.ravel()})
    events, states = thin(events, states, rng, drop_rate, missing_rate, SENSORS, events["failure"].to_numpy() == 1)
    static = pd.DataFrame(
        {
            "unit_id": ids,
            "model": model.astype(object),
            "site": site.astype(object),
            "rated_power_kw": rated,
            "hub_height_m": hub,
            "install_year": install_year.astype("int64"),
        }
    )
    hidden = pd.DataFrame(
        {
            "unit_id": ids,
            "wear_rate": wear_rate,
            "thermal_gain": thermal_gain,
            "vibration_gain": vibration_gain,
            "failure_threshold": threshold,
        }
    )
    return Simulation("turbines", events, static, hidden, states, "unit_id", "t", params)
