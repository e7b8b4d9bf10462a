"""An agent-based patient population on Mesa: a chronic disease that progresses, and an infection that spreads.

Each patient (a :class:`mesa.Agent`) has static attributes (age, sex, risk group, ward) and hidden parameters of
their own: a disease progression rate (higher in older and higher-risk patients), a treatment response, a
susceptibility to infection and baseline vitals. One step is one day:

1. the model counts the infected patients of every ward (a snapshot, so the order agents act in does not matter);
2. each patient, in a random order (``AgentSet.shuffle_do``):

   - catches the infection with probability ``1 - exp(-(beta * susceptibility * infected_share_of_ward + import))``,
     recovers after about a week (probability 1/7 a day), and loses immunity slowly (0.01 a day);
   - progresses: severity grows by ``progression_rate * (1 + 1.5 infected) * (1 - treatment_response * treated)``
     plus noise; treatment starts once severity passes 0.5;
   - is measured: heart rate, systolic blood pressure, temperature and SpO2 every day, CRP (a lab value) every
     ``lab_every`` days and daily while infected; each rises or falls with severity and infection;
   - may have an adverse event (the ``failure`` channel) with hazard ``0.002 exp(2 severity + infected)``; an event is
     fatal with probability 0.3 (the patient's sequence ends there), otherwise an intervention halves severity.

Sequences therefore have different lengths. Randomness comes only from the model's seeded ``numpy`` generator and
its seeded ``random.Random`` (used by ``shuffle_do``), so the same seed gives the same tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import ParameterError
from twinforge.simulate._common import Simulation, check_int, check_rate, check_seed, thin, time_column

RISK_GROUPS = ("low", "medium", "high")
INFECTION = ("susceptible", "infected", "recovered")
CHANNELS = ["heart_rate", "systolic_bp", "temperature", "spo2", "crp", "infection", "treated", "failure"]
SENSORS = ["heart_rate", "systolic_bp", "temperature", "spo2"]


def _mesa() -> Any:
    try:
        import mesa
    except ImportError:
        raise ParameterError(
            'the patient simulator needs Mesa: pip install "twinforge[sim]" (or pip install mesa==3.3.1)'
        ) from None
    return mesa


def _classes() -> tuple[type, type]:
    """The Mesa model and agent classes (built on first use, so importing twinforge does not import Mesa)."""
    mesa = _mesa()

    class Patient(mesa.Agent):
        """One patient: static attributes, hidden rates, and the disease and infection states."""

        def __init__(self, model: Any, index: int) -> None:
            super().__init__(model)
            rng = model.rng
            self.index = index
            self.patient_id = f"P{index:05d}"
            self.age = int(np.clip(rng.normal(62, 14), 20, 95))
            self.sex = "F" if rng.random() < 0.52 else "M"
            risk_score = (self.age - 62) / 14 + rng.normal(0, 1)
            self.risk_group = RISK_GROUPS[int(np.digitize(risk_score, [-0.5, 0.8]))]
            self.ward = f"W{int(rng.integers(0, model.n_wards)) + 1}"
            # hidden parameters
            risk = {"low": 0.7, "medium": 1.0, "high": 1.6}[self.risk_group]
            self.progression_rate = 0.004 * risk * (1 + 0.01 * (self.age - 62)) * rng.lognormal(0, 0.4)
            self.treatment_response = float(rng.beta(4, 3))
            self.susceptibility = float(rng.lognormal(0, 0.5))
            self.baseline_hr = float(rng.normal(72, 7))
            self.baseline_sbp = float(rng.normal(125, 10) + 0.2 * (self.age - 62))
            # state
            self.severity = float(rng.uniform(0, 0.4))
            self.infection = 1 if rng.random() < model.initial_infected else 0
            self.treated = False
            self.alive = True

        def step(self) -> None:
            model, rng = self.model, self.model.rng
            # infection, from the ward's snapshot at the start of the day
            if self.infection == 0:
                pressure = model.beta * self.susceptibility * model.ward_share[self.ward] + model.import_rate
                if rng.random() < 1 - math.exp(-pressure):
                    self.infection = 1
            elif self.infection == 1:
                if rng.random() < 1 / 7:
                    self.infection = 2
            elif rng.random() < 0.01:
                self.infection = 0
            infected = float(self.infection == 1)
            # disease progression
            if self.severity > 0.5:
                self.treated = True
            slow = 1 - self.treatment_response * self.treated
            growth = self.progression_rate * (1 + 1.5 * infected) * slow
            self.severity = max(0.0, self.severity + growth + rng.normal(0, 0.01))
            s = self.severity
            # measurements
            day = model.steps - 1
            lab = day % model.lab_every == 0 or infected
            record = (
                self.index,
                day,
                self.baseline_hr + 15 * s + 12 * infected + rng.normal(0, 4),
                self.baseline_sbp + 10 * s - 6 * infected + rng.normal(0, 6),
                36.8 + 1.4 * infected + 0.2 * s + rng.normal(0, 0.25),
                min(100.0, 98 - 4 * s - 3 * infected + rng.normal(0, 1)),
                math.exp(math.log(3) + 1.2 * s + 1.5 * infected + rng.normal(0, 0.3)) if lab else math.nan,
                self.infection,
                int(self.treated),
            )
            # adverse event
            event = rng.random() < 0.002 * math.exp(2 * s + infected)
            model.records.append((*record, int(event), s))
            if event:
                if rng.random() < 0.3:
                    self.alive = False
                    self.remove()
                else:
                    self.severity = 0.5 * s

    class Ward(mesa.Model):
        """A hospital population whose wards share infections."""

        def __init__(
            self,
            n_patients: int,
            n_wards: int,
            beta: float,
            import_rate: float,
            initial_infected: float,
            lab_every: int,
            seed: int,
        ) -> None:
            super().__init__(rng=seed)
            # the stdlib generator shuffle_do uses: seeded from the numpy one so one seed fixes both
            self.random.seed(int(self.rng.integers(2**31)))
            self.n_wards, self.beta, self.import_rate = n_wards, beta, import_rate
            self.initial_infected, self.lab_every = initial_infected, lab_every
            self.records: list[tuple] = []
            self.patients = [Patient(self, i) for i in range(n_patients)]
            self.ward_share: dict[str, float] = {}

        def step(self) -> None:
            counts: dict[str, list[int]] = {}
            for p in self.agents:
                c = counts.setdefault(p.ward, [0, 0])
                c[0] += p.infection == 1
                c[1] += 1
            self.ward_share = {w: i / n for w, (i, n) in counts.items()}
            self.agents.shuffle_do("step")

    return Ward, Patient


def patients(
    n_patients: int = 200,
    n_steps: int = 120,
    *,
    seed: int = 0,
    n_wards: int = 8,
    contagion: float = 0.35,
    import_rate: float = 0.002,
    initial_infected: float = 0.03,
    lab_every: int = 3,
    start: Any = None,
    missing_rate: float = 0.0,
    drop_rate: float = 0.0,
) -> Simulation:
    """Simulate a patient population on Mesa: a chronic disease progresses, an infection spreads within wards.

    Parameters
    ----------
    n_patients : int, default 200
        Number of patients (agents).
    n_steps : int, default 120
        Days simulated; a patient's sequence ends earlier at a fatal event.
    seed : int, default 0
        Seed of every random draw: the same arguments give the same tables.
    n_wards : int, default 8
        Wards patients are spread over; infection spreads within a ward.
    contagion : float, default 0.35
        Transmission rate ``beta``: daily infection pressure per unit of infected share in the ward.
    import_rate : float, default 0.002
        Daily infection pressure from outside the hospital.
    initial_infected : float, default 0.03
        Share of patients infected on day 0.
    lab_every : int, default 3
        Days between routine lab draws (CRP); infected patients are tested daily. Other days hold NaN.
    start : str or Timestamp, optional
        If given, the time column ``day`` holds dates from ``start``; otherwise the day number 0, 1, 2, ...
    missing_rate : float, default 0.0
        Share of vital-sign readings lost (NaN), independently per channel.
    drop_rate : float, default 0.0
        Share of days not recorded at all (irregular visits); days with an adverse event are always kept.

    Returns
    -------
    Simulation
        ``events`` (``patient_id``, ``day``, heart_rate, systolic_bp, temperature, spo2, crp, infection, treated,
        failure), ``static`` (``patient_id``, age, sex, risk_group, ward), ``hidden`` (``patient_id``,
        progression_rate, treatment_response, susceptibility, baseline_hr, baseline_sbp) and ``states``
        (``patient_id``, ``day``, severity).

    Raises
    ------
    ParameterError
        A bad count or rate, or Mesa not installed (it names the extra to install).

    Examples
    --------
    >>> import twinforge.simulate as sim
    >>> ward = sim.patients(n_patients=20, n_steps=10, seed=0)
    >>> list(ward.static.columns)
    ['patient_id', 'age', 'sex', 'risk_group', 'ward']
    """
    n_patients = check_int("n_patients", n_patients, 1)
    n_steps = check_int("n_steps", n_steps, 1)
    seed = check_seed(seed)
    n_wards = check_int("n_wards", n_wards, 1)
    contagion = check_rate("contagion", contagion, high=50.0)
    import_rate = check_rate("import_rate", import_rate)
    initial_infected = check_rate("initial_infected", initial_infected)
    lab_every = check_int("lab_every", lab_every, 1)
    missing_rate = check_rate("missing_rate", missing_rate)
    drop_rate = check_rate("drop_rate", drop_rate)
    times = time_column(n_steps, start, "1D", "patients")
    params = {
        "n_patients": n_patients, "n_steps": n_steps, "seed": seed, "n_wards": n_wards, "contagion": contagion,
        "import_rate": import_rate, "initial_infected": initial_infected, "lab_every": lab_every,
        "start": None if start is None else str(start), "missing_rate": missing_rate, "drop_rate": drop_rate,
    }  # fmt: skip

    ward_cls, _ = _classes()
    model = ward_cls(n_patients, n_wards, contagion, import_rate, initial_infected, lab_every, seed)
    for _ in range(n_steps):
        if not model.agents:
            break
        model.step()

    people = model.patients
    columns = ["index", "day", *CHANNELS[:-1], "failure", "severity"]
    rec = pd.DataFrame.from_records(model.records, columns=columns).sort_values(["index", "day"], kind="stable")
    rec = rec.reset_index(drop=True)
    ids = np.array([p.patient_id for p in people], dtype=object)
    events = pd.DataFrame(
        {
            "patient_id": ids[rec["index"].to_numpy()],
            "day": times[rec["day"].to_numpy()],
            "heart_rate": rec["heart_rate"].round(1),
            "systolic_bp": rec["systolic_bp"].round(1),
            "temperature": rec["temperature"].round(2),
            "spo2": rec["spo2"].round(1),
            "crp": rec["crp"].round(2),
            "infection": np.array(INFECTION, dtype=object)[rec["infection"].to_numpy()],
            "treated": rec["treated"].astype("int64"),
            "failure": rec["failure"].astype("int64"),
        }
    )
    states = pd.DataFrame({"patient_id": events["patient_id"], "day": events["day"], "severity": rec["severity"]})
    rng = np.random.default_rng([seed, 1])
    events, states = thin(events, states, rng, drop_rate, missing_rate, SENSORS, events["failure"].to_numpy() == 1)
    static = pd.DataFrame(
        {
            "patient_id": ids,
            "age": np.array([p.age for p in people], dtype="int64"),
            "sex": np.array([p.sex for p in people], dtype=object),
            "risk_group": np.array([p.risk_group for p in people], dtype=object),
            "ward": np.array([p.ward for p in people], dtype=object),
        }
    )
    hidden = pd.DataFrame(
        {
            "patient_id": ids,
            **{
                name: np.array([getattr(p, name) for p in people], dtype="float64")
                for name in ("progression_rate", "treatment_response", "susceptibility", "baseline_hr", "baseline_sbp")
            },
        }
    )
    return Simulation("patients", events, static, hidden, states, "patient_id", "day", params)
