"""What both simulators share: the result object, argument checks, and writing the tables."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import OutputError, ParameterError


@dataclass
class Simulation:
    """A simulated population: per-entity time series, static attributes and the hidden ground truth.

    Attributes
    ----------
    events : DataFrame
        The long table of measurements: ``entity_key``, ``time_key``, then the channels (one row per entity and
        time step), sorted by entity and time. The ``failure`` channel is 1 at the step an adverse event happens.
    static : DataFrame
        One row per entity: ``entity_key`` and the attributes that do not change over time.
    hidden : DataFrame
        One row per entity: ``entity_key`` and the parameters that drove the simulation but are not observed
        (e.g. a turbine's own wear rate). Ground truth for tests that a personalised twin recovers them.
    states : DataFrame
        The hidden state over time (e.g. accumulated wear), aligned with ``events``.
    entity_key, time_key : str
        Names of the entity and time columns.
    params : dict
        The arguments the simulation ran with (seed included): running it again with them gives the same tables.
    """

    name: str
    events: pd.DataFrame
    static: pd.DataFrame
    hidden: pd.DataFrame
    states: pd.DataFrame
    entity_key: str
    time_key: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> list[str]:
        """The measured channels of :attr:`events` (every column but the entity and time keys)."""
        return [c for c in self.events.columns if c not in (self.entity_key, self.time_key)]

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
        """Write ``events``, ``static`` and ``hidden`` tables, atomically.

        ``path`` is a folder (created; it receives ``events.csv``, ``static.csv`` and ``hidden.csv``), or a table
        file such as ``fleet.csv`` or ``fleet.parquet`` (the events; the other tables go beside it as
        ``fleet.static.csv`` and ``fleet.hidden.csv``). Existing outputs are refused unless ``overwrite``.

        Returns
        -------
        dict
            Table name -> path written.
        """
        from twinforge.io import table_format, write_table

        out = Path(path)
        tables = {"events": self.events, "static": self.static, "hidden": self.hidden}
        name = out.name.lower()
        if any(name.endswith(s) for s in (".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".pq")):
            table_format(out)
            stem, suffix = _split_suffix(out.name)
            paths = {t: out if t == "events" else out.with_name(f"{stem}.{t}{suffix}") for t in tables}
            for p in paths.values():
                if p.exists() and not overwrite:
                    raise OutputError(f"{str(p)!r} already exists: choose another path or pass overwrite (--overwrite)")
            if not out.parent.exists():
                raise OutputError(f"folder {str(out.parent)!r} does not exist: create it first")
            for t, p in paths.items():
                write_table(tables[t], p, overwrite=overwrite)
            return paths
        if out.suffix:
            raise OutputError(
                f"output {str(out)!r}: give a folder, or a table file ending in .csv, .csv.gz, .tsv or .parquet"
            )
        return _save_folder(out, tables, overwrite)


def _split_suffix(name: str) -> tuple[str, str]:
    lower = name.lower()
    for suffix in (".csv.gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""  # pragma: no cover - callers check the suffix first


def _save_folder(out: Path, tables: dict[str, pd.DataFrame], overwrite: bool) -> dict[str, Path]:
    """Write the tables into a temporary folder beside ``out`` and move it into place in one rename."""
    if out.exists() and not overwrite:
        raise OutputError(f"{str(out)!r} already exists: choose another path or pass overwrite (--overwrite)")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{str(out)!r} exists and is not a folder: choose another output")
    if out.exists() and any(p.name not in {f"{t}.csv" for t in tables} for p in out.iterdir()):
        raise OutputError(f"{str(out)!r} holds other files than a simulation's tables: refusing to replace it")
    if not out.parent.exists():
        raise OutputError(f"folder {str(out.parent)!r} does not exist: create it first")
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for t, df in tables.items():
            df.to_csv(tmp / f"{t}.csv", index=False)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return {t: out / f"{t}.csv" for t in tables}


# ------------------------------------------------------------------------------------------ argument checks
def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; a ParameterError naming ``name`` otherwise."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bound = f"an integer >= {low}" if high is None else f"an integer between {low} and {high}"
        raise ParameterError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def check_rate(name: str, value: Any, high: float = 1.0) -> float:
    """``value`` as a float in [0, high)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0 or value >= high:
        raise ParameterError(f"{name} must be a number in [0, {high}), got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int:
    return check_int("seed", seed, 0)


def time_column(n_steps: int, start: Any, freq: str, name: str) -> np.ndarray:
    """Integer steps 0..n_steps-1, or timestamps from ``start`` every ``freq`` when ``start`` is given."""
    if start is None:
        return np.arange(n_steps, dtype="int64")
    try:
        origin = pd.Timestamp(start)
    except (ValueError, TypeError):
        origin = pd.NaT
    if pd.isna(origin):
        raise ParameterError(f"{name}: start (--start) must be a date such as '2024-01-01', got {start!r}")
    step = pd.Timedelta(freq)
    return pd.date_range(origin, periods=n_steps, freq=step).to_numpy()


def thin(
    events: pd.DataFrame,
    states: pd.DataFrame,
    rng: np.random.Generator,
    drop_rate: float,
    missing_rate: float,
    sensors: list[str],
    keep: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Irregular sampling (drop rows, never those in ``keep``) and sensor dropouts (NaN in ``sensors``)."""
    if drop_rate > 0:
        kept = (rng.random(len(events)) >= drop_rate) | keep
        events = events.loc[kept].reset_index(drop=True)
        states = states.loc[kept].reset_index(drop=True)
    if missing_rate > 0:
        for col in sensors:
            values = events[col].to_numpy(dtype="float64", copy=True)
            values[rng.random(len(values)) < missing_rate] = np.nan
            events[col] = values
    return events, states
