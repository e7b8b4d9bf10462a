"""PII: never learned, never emitted, replaced by fakes of a chosen locale, the same fake for the same entity."""

import json

import numpy as np
import pandas as pd
import pytest
from faker import Faker

import twinforge
from twinforge import MetadataError
from twinforge.models import base

PII = ["first_name", "last_name", "email", "phone", "ssn"]


def people(n_people: int = 300, rows_each: int = 3, seed: int = 0) -> pd.DataFrame:
    """Rows of visits; each person (customer_id) keeps the name, email, phone and SSN Faker gave them.

    Faker en_US draws first names from a few thousand, so a generator that ignored the real values would emit
    some of them by coincidence: the test below would catch it.
    """
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    persons = [
        {
            "first_name": fake.first_name(),
            "last_name": fake.last_name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "ssn": fake.ssn(),
        }
        for _ in range(n_people)
    ]
    rows = []
    for pid, person in enumerate(persons):
        for _ in range(rows_each):
            rows.append({"customer_id": 5000 + pid, **person, "amount": round(float(rng.gamma(2, 30)), 2)})
    df = pd.DataFrame(rows)
    df["segment"] = rng.choice(["a", "b", "c"], len(df))
    return df


def metadata_for(df: pd.DataFrame) -> twinforge.Metadata:
    meta = twinforge.Metadata.detect(df)
    meta.entity_key = "customer_id"
    return meta


def test_personal_columns_are_detected_as_pii():
    meta = twinforge.Metadata.detect(people())
    kinds = {c: (meta.columns[c].kind, meta.columns[c].pii_type) for c in PII}
    assert kinds == {
        "first_name": ("pii", "first_name"),
        "last_name": ("pii", "last_name"),
        "email": ("pii", "email"),
        "phone": ("pii", "phone"),
        "ssn": ("pii", "national_id"),
    }
    # eight patients: their names are still PII, not eight categories
    small = twinforge.Metadata.detect(people(8, 1).rename(columns={"first_name": "patient_name"}))
    assert small.columns["patient_name"].kind == "pii"


QUICK = {
    "copula": {},
    "mst": {"iters": 50},
    "auto": {"epochs": 2, "progress": False},
    "tvae": {"epochs": 2, "progress": False, "batch_size": 100},
    "ctgan": {"epochs": 2, "progress": False, "batch_size": 100},
    "ddpm": {"epochs": 2, "progress": False, "batch_size": 100},
}


DP_MODELS = ("mst", "auto", "tvae", "ctgan", "ddpm")


@pytest.mark.parametrize(
    ("name", "epsilon"), [(m, None) for m in QUICK] + [(m, 1.0) for m in DP_MODELS], ids=lambda v: str(v)
)
def test_no_input_pii_value_appears_in_any_output(name, epsilon, tmp_path, monkeypatch):
    """With and without DP. Under DP the real values are not kept (not even hashes), so names are pseudonyms."""
    params = QUICK[name] if epsilon is None else {**QUICK[name], "epsilon": epsilon}
    monkeypatch.setattr(base, "CHUNK_ROWS", 700)  # several chunks: entities cross chunk boundaries
    data = people()
    meta = metadata_for(data)
    if epsilon is not None:
        meta.update_column("amount", low=0, high=1000)
    model = twinforge.create(name, seed=0, **params).fit(data, metadata=meta)
    assert not set(PII) & set(model.transformer_.learned)
    out = model.sample(3000, seed=1)
    real = {str(v).strip().lower() for c in PII for v in data[c]}
    emitted = {str(v).strip().lower() for c in out.columns for v in out[c].dropna()}
    assert not real & emitted
    # realistic fakes of the same kind; under DP names carry a pseudonym tag
    assert out["email"].str.contains("@").all() and out["ssn"].str.fullmatch(r"\d{3}-\d{2}-\d{4}").all()
    tagged = out[["first_name", "last_name"]].apply(lambda s: s.str.fullmatch(r"[^#\d]+ #[1-9]\d{3}"))
    assert tagged.all().all() if epsilon is not None else not tagged.any().any()
    # the same person keeps one fake name, email, phone and SSN across rows (and chunks) of one call
    per_person = out.groupby("customer_id")[PII].nunique()
    assert (per_person == 1).all().all()
    if epsilon is None:
        assert out.groupby("customer_id").size().max() > 1 and out["customer_id"].nunique() > 100
    else:  # how often an id repeats is a statistic of the data: a DP fit emits unique ids
        assert out["customer_id"].is_unique
    # reproducible, and nothing of the real values in the saved model
    assert model.sample(500, seed=2).equals(model.sample(500, seed=2))
    model.save(tmp_path / "m")
    saved = set(_strings(json.loads((tmp_path / "m" / "model.json").read_text())))
    assert saved and not real & saved
    again = twinforge.load(tmp_path / "m")
    assert again.sample(500, seed=2).equals(model.sample(500, seed=2))


def test_realistic_names_under_dp_are_an_opt_in_with_a_warning(tmp_path):
    """fake_style='realistic': plain Faker names under DP (a warning says a common name may coincide); the
    pseudonym style works without DP too; the option is checked."""
    data = people(200)
    meta = metadata_for(data).update_column("amount", low=0, high=1000)
    meta.update_column("first_name", fake_style="realistic")
    with pytest.warns(UserWarning, match="'first_name': fake_style='realistic' under differential privacy"):
        model = twinforge.create("mst", seed=0, epsilon=1.0, iters=50).fit(data, metadata=meta)
    out = model.sample(1000, seed=0)
    provider = Faker("en_US").provider("faker.providers.person")
    assert set(out["first_name"]) <= set(provider.first_names)  # plain names
    assert out["last_name"].str.fullmatch(r"[^#\d]+ #[1-9]\d{3}").all()  # the default elsewhere
    model.save(tmp_path / "m")
    assert twinforge.load(tmp_path / "m").sample(300, seed=3).equals(model.sample(300, seed=3))
    assert twinforge.Metadata.from_json(meta.to_json()).columns["first_name"].fake_style == "realistic"

    plain = metadata_for(data).update_column("last_name", fake_style="pseudonym")
    out = twinforge.create("copula", seed=0).fit(data, metadata=plain).sample(500, seed=0)
    assert out["last_name"].str.fullmatch(r"[^#\d]+ #[1-9]\d{3}").all()
    assert not out["first_name"].str.contains("#").any()
    with pytest.raises(MetadataError, match="fake_style is only allowed with kind 'pii' and pii_type name"):
        metadata_for(data).update_column("email", fake_style="realistic").validate()
    with pytest.raises(MetadataError, match="unknown fake_style 'plain'; use one of pseudonym, realistic"):
        metadata_for(data).update_column("first_name", fake_style="plain").validate()


def test_pii_locale_is_configurable_and_checked():
    data = people(100, 2)
    meta = metadata_for(data).update_column("last_name", kind="pii", pii_type="last_name", locale="ja_JP")
    out = twinforge.create("copula", seed=0).fit(data, metadata=meta).sample(200, seed=0)
    assert out["last_name"].map(lambda v: any(ord(ch) > 0x3000 for ch in v)).all()  # Japanese script
    assert out["first_name"].map(str.isascii).all()  # the default en_US elsewhere
    bad = metadata_for(data).update_column("last_name", kind="pii", pii_type="last_name", locale="xx_XX")
    with pytest.raises(MetadataError, match="unknown locale 'xx_XX'"):
        twinforge.create("copula").fit(data, metadata=bad)
    with pytest.raises(MetadataError, match="locale is only allowed"):
        twinforge.create("copula").fit(data, metadata=metadata_for(data).update_column("amount", locale="de_DE"))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mst", {"iters": 50}),
        ("auto", {"epochs": 1, "progress": False}),  # DP-SGD
        ("tvae", {"epochs": 1, "progress": False, "batch_size": 100}),  # DP-SGD
    ],
)
def test_a_dp_fit_emits_no_input_pii(name, params, tmp_path):
    """Under DP nothing of the real PII is kept, not even hashes: the fakes are a function of the seed alone.

    So no value of the input comes out because it was in the input: fitting on the same rows with every PII value
    replaced gives the same fakes. Names are pseudonyms (a tag no real name carries) and emails take a reserved
    domain, so neither can equal a real value; phones and SSNs are too many to coincide.
    """
    data = people(200)
    meta = metadata_for(data).update_column("amount", low=0, high=500)
    model = twinforge.create(name, seed=0, epsilon=1.0, **params).fit(data, metadata=meta)
    assert model.fit_info_["privacy"]["epsilon_spent"] <= 1.0
    assert not set(PII) & set(model.transformer_.learned)
    out = model.sample(2000, seed=1)
    for column in PII:  # pseudonyms, reserved domains, or values too many to coincide: none of the input's
        assert not set(out[column].str.lower()) & set(data[column].str.lower()), column
    others = people(200, seed=7)  # the same visits, other people
    swapped = data.copy()
    swapped[PII] = others[PII].to_numpy()
    again = twinforge.create(name, seed=0, epsilon=1.0, **params).fit(swapped, metadata=meta).sample(2000, seed=1)
    pd.testing.assert_frame_equal(out[PII], again[PII])
    assert (out.groupby("customer_id")[PII].nunique() <= 1).all().all()
    model.save(tmp_path / "m")
    saved = set(_strings(json.loads((tmp_path / "m" / "model.json").read_text())))
    real = {str(v).strip().lower() for c in PII for v in data[c]}
    assert saved and not real & saved  # no real value, and (seen_ empty) no hash of one
    assert all(model.transformer_.transforms_[c].seen_ == [] for c in PII)


def test_sequence_static_pii_is_faked_per_entity():
    """A person's static attributes in a long table: detected or declared PII is faked, one fake per new entity."""
    from faker import Faker

    from ._sequence_data import make_fleet

    df = make_fleet(40)
    fake = Faker("en_US")
    fake.seed_instance(3)
    units = df["unit"].unique()
    df["owner_name"] = df["unit"].map({u: fake.name() for u in units})
    df["badge"] = df["unit"].map({u: f"{fake.last_name()}-{u % 7}" for u in units})  # detection: a category
    meta = twinforge.Metadata.detect(df).update_column("badge", kind="pii", pii_type="other")
    model = twinforge.create("sequence", seed=0, epochs=2, progress=False)
    model.fit(df, metadata=meta, entity_key="unit", time_key="t", static=["site", "owner_name", "badge"])
    learned = model.static_model_.transformer_.learned
    assert "owner_name" not in learned and "badge" not in learned
    out = model.sample(entities=30, seed=0)
    for column in ("owner_name", "badge"):
        assert not set(out[column]) & set(df[column]), column
        assert (out.groupby("unit")[column].nunique() == 1).all()
    assert out["unit"].nunique() == 30


def test_federated_pii_avoids_every_sites_values_and_follows_the_entity(tmp_path):
    """Each site sends short hashes of all its PII columns' values (none with DP) and the share of entities with
    one value: the global model emits no site's value in any column, and one fake per person."""
    pytest.importorskip("flwr")
    from twinforge.federated import simulate

    data = people(200, 2)
    parts = [data.iloc[:200].reset_index(drop=True), data.iloc[200:].reset_index(drop=True)]
    tvae = {"width": 32, "latent_dim": 8, "batch_size": 100}
    model = simulate(parts, tmp_path / "m", metadata=metadata_for(data), model="tvae", params=tvae, rounds=1)
    out = model.sample(2000, seed=1)
    real = {str(v).strip().lower() for c in PII for v in data[c]}
    assert not real & {str(v).strip().lower() for c in out.columns for v in out[c].dropna()}
    assert (out.groupby("customer_id")[PII].nunique() == 1).all().all()
    assert out.groupby("customer_id").size().max() > 1
    private = simulate(
        parts,
        tmp_path / "p",
        metadata=metadata_for(data),
        model="tvae",
        params=tvae,
        rounds=1,
        dp="local",
        epsilon=8.0,
        delta=1e-4,
    )
    assert all(private.transformer_.transforms_[c].seen_ == [] for c in PII)
    assert all(private.transformer_.transforms_[c].entity_key_ == "customer_id" for c in PII)


def test_a_dp_fit_keeps_no_trace_of_the_real_pii(tmp_path):
    data = people(200, 2)
    meta = metadata_for(data).update_column("amount", low=0, high=500)
    model = twinforge.create("mst", seed=0, epsilon=1.0, iters=100).fit(data, metadata=meta)
    assert all(len(model.transformer_.transforms_[c].seen_) == 0 for c in PII)
    out = model.sample(400, seed=0)
    assert (out.groupby("customer_id")[PII].nunique() <= 1).all().all()


def _strings(obj):
    """Every string (keys too) inside a JSON document, lower case."""
    if isinstance(obj, str):
        yield obj.strip().lower()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_batched_fake_names_follow_the_locales_weighted_lists():
    """First and last names come in one weighted draw per batch, from the list Faker's own draw uses."""
    from twinforge.transforms._generated import _make_fakes

    fake = Faker("en_US")
    fake.seed_instance(0)
    provider = fake.provider("faker.providers.person")
    names = _make_fakes(fake, "first_name", 20_000)
    assert len(names) == 20_000 and set(names) <= set(provider.first_names)
    weights = pd.Series(provider.first_names, dtype=float)
    top = weights.idxmax()  # Faker's own per-call draw, the reference
    share = weights[top] / weights.sum()
    assert abs(names.count(top) / len(names) - share) < 0.01
    assert set(_make_fakes(fake, "last_name", 500)) <= set(provider.last_names)
    german = Faker("de_DE")
    german.seed_instance(0)
    assert set(_make_fakes(german, "last_name", 200)) <= set(german.provider("faker.providers.person").last_names)
    both = Faker(["en_US", "fr_FR"])  # several locales: Faker's own draw, one value at a time
    both.seed_instance(0)
    assert len(_make_fakes(both, "first_name", 5)) == 5


def test_cli_dp_fit_gives_pseudonyms_unless_realistic_names(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from twinforge.cli import app

    monkeypatch.chdir(tmp_path)
    people(100, 2).to_csv("people.csv", index=False)
    fit = ["fit", "people.csv", "--model", "mst", "--seed", "0", "--param", "iters=50", "--epsilon", "1"]
    names = {}
    for flag in ("", "--realistic-names"):
        out = f"m{flag}"
        result = CliRunner().invoke(app, [*fit, "--out", out, *([flag] if flag else [])])
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(app, ["sample", out, "--rows", "200", "--seed", "0", "--out", f"{out}.csv"])
        assert result.exit_code == 0, result.output
        names[flag] = pd.read_csv(f"{out}.csv")["first_name"]
    assert names[""].str.fullmatch(r"[^#\d]+ #[1-9]\d{3}").all()
    assert not names["--realistic-names"].str.contains("#").any()
    assert twinforge.load("m--realistic-names").metadata_.columns["first_name"].fake_style == "realistic"
    shown = {flag: " ".join(CliRunner().invoke(app, ["info", f"m{flag}"]).output.split()) for flag in names}
    assert "pii (first_name); fakes: pseudonym" in shown[""]
    assert "pii (first_name); fakes: realistic" in shown["--realistic-names"]
    for args, words in [
        (["--realistic-names"], "--realistic-names applies to DP fits (--epsilon)"),
        (["--realistic-names", "--epsilon", "1", "--model", "mst"], "DATA has no PII name column"),
    ]:
        data = "people.csv" if "DATA" not in words else "plain.csv"
        people(50, 1)[["amount", "segment"]].to_csv("plain.csv", index=False)
        result = CliRunner().invoke(app, ["fit", data, "--out", "bad", *args])
        assert result.exit_code == 2, result.output
        assert words in " ".join(result.output.split()) and "Traceback" not in result.output
