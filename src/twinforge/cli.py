"""The ``twinforge`` command: a thin Typer layer over the public API.

Every error a user can cause is printed as one message on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import twinforge
from twinforge.errors import OutputError, ParameterError, TwinforgeError
from twinforge.metadata import NAME_PII_TYPES

app = typer.Typer(
    name="twinforge",
    help="Synthetic data that is faithful, useful and private. Start with `twinforge demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# markup off: paths, column names and values are printed as they are ("size[m]" stays "size[m]"); the few
# styled lines ask for markup and escape what they interpolate
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

DataArg = Annotated[str, typer.Argument(help="Input table: a .csv/.csv.gz/.tsv/.parquet file, or a SQLAlchemy URL.")]
TableOpt = Annotated[str | None, typer.Option("--table", help="Table name, when DATA is a SQL URL.")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="SQL query, when DATA is a SQL URL.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace the output if it exists.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for reproducible results.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Threads that draw rows at once (default: the CPU cores this process may use); the same rows for any "
        "number. Models that draw on one thread ignore it.",
    ),
]
DrawSeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Seed of this draw. Without it, a model fitted with --seed draws the same rows every time (pass "
        "another seed for other rows); a model fitted without one draws fresh rows.",
    ),
]
DEFAULT_MODEL = "auto"


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a TwinforgeError into one red line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwinforgeError as exc:
            text = str(exc)
            name = text.partition(" must ")[0]
            if " must " in text and name in kwargs:  # the library's "seed must be ..." is the CLI's --seed
                text = "--" + name.replace("_", "-") + text[len(name) :]
            # escaped: a message naming an extra ("twinforge[dp]") or a column like "size[m]" is not rich markup
            err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: no output was written")
            raise typer.Exit(130) from None

    return wrapper


@contextlib.contextmanager
def _as_options(**options: str) -> Iterator[None]:
    """Say ``--within must be ...`` where the library says ``event within must be ...`` (the CLI user's words;
    a library name equal to the command's parameter is renamed by ``_user_errors``)."""
    try:
        yield
    except ParameterError as exc:
        text = str(exc)
        for name, option in options.items():
            if text.startswith(f"{name} must"):
                raise ParameterError(option + text[len(name) :]) from None
        raise


@contextlib.contextmanager
def _as_where() -> Iterator[None]:
    """Say ``--where 'age': ...`` where the library says ``conditions 'age': ...`` (and ``--rebalance`` for
    ``rebalance``); the command line has no seed_data to point to."""
    try:
        yield
    except ParameterError as exc:
        text = str(exc)
        for name, option in (("conditions", "--where"), ("rebalance", "--rebalance")):
            if text.startswith((name + " ", name + ":")):
                text = (option + text[len(name) :]).replace(" (pass it in seed_data to keep given values)", "")
                raise ParameterError(text) from None
        raise


def _check_model_out(out: Path, overwrite: bool, inputs: list[Any]) -> None:
    """A model directory may be written to ``out``: checked before the (long) fit, not after it."""
    twinforge.io.check_output(out, overwrite=overwrite, inputs=inputs)
    if out.exists() and not (out / "model.json").is_file():
        raise OutputError(f"{str(out)!r} exists and is not a twinforge model: refusing to replace it")


def _positive_rows(rows: int) -> int:
    if rows <= 0:
        raise ParameterError(f"--rows must be a positive integer, got {rows}")
    return rows


def _workers(workers: int | None) -> int | None:
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be a positive integer (threads that sample at once), got {workers}")
    return workers


def _read(data: str, table: str | None, query: str | None):
    with console.status(f"reading {data}"):
        return twinforge.read_table(data, table=table, query=query)


def _create(
    model: str,
    seed: int | None,
    max_minutes: float | None = None,
    params: dict[str, Any] | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
) -> twinforge.Synthesizer:
    """A new model; ``max_minutes`` for models that train a while, ``params`` from ``--param``, ``epsilon`` for DP."""
    params = dict(params or {})
    if epsilon is not None or delta is not None:
        if "epsilon" not in twinforge.models.get_class(model)._param_names():
            private = [
                m for m in twinforge.available_models() if "epsilon" in twinforge.models.get_class(m)._param_names()
            ]
            raise ParameterError(
                f"--epsilon: model {model!r} cannot train with differential privacy; use one of {', '.join(private)}"
            )
        if epsilon is None:
            raise ParameterError("--delta needs --epsilon: give the privacy budget, e.g. --epsilon 1")
        params["epsilon"] = epsilon
        if delta is not None:
            params["delta"] = delta
    if max_minutes is not None:
        if "max_minutes" not in twinforge.models.get_class(model)._param_names():
            raise ParameterError(
                f"--max-minutes: model {model!r} has no training time budget (it fits in one pass); drop the option"
            )
        if "max_minutes" in params:
            raise ParameterError("max_minutes given twice (--max-minutes and --param max_minutes=...): keep one")
        params["max_minutes"] = max_minutes
    return twinforge.create(model, seed=seed, **params)


def _param_value(text: str) -> Any:
    """``--param`` value: an int, a float, true/false, none, else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_params(model: str, items: list[str] | None) -> dict[str, Any]:
    """``["epochs=300", "batch_size=500"]`` -> ``{"epochs": 300, "batch_size": 500}``, names checked for ``model``."""
    if not items:
        return {}
    names = [n for n in twinforge.models.get_class(model)._param_names() if n != "seed"]
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--param {item!r}: write NAME=VALUE, e.g. --param epochs=300")
        if name == "seed":
            raise ParameterError("--param seed=...: use --seed instead")
        if name not in names:
            raise ParameterError(
                f"--param {name!r}: model {model!r} has no such parameter; its parameters are: {', '.join(names)}"
            )
        if name in params:
            raise ParameterError(f"--param {name!r} given twice: keep one")
        params[name] = _param_value(value)
    return params


def _fitting(synth: twinforge.Synthesizer, message: str) -> contextlib.AbstractContextManager:
    """A spinner, unless the model shows its own progress bar (two live displays cannot share a terminal)."""
    return contextlib.nullcontext() if getattr(synth, "progress", False) else console.status(message)


@app.command()
@_user_errors
def fit(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the fitted model in.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name (default: auto); see `twinforge models`.")
    ] = None,
    seed: SeedOpt = None,
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Metadata JSON (from `twinforge metadata`); detected if omitted.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Training time budget in minutes (neural models).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Model parameter NAME=VALUE, repeatable (e.g. --param epochs=300 --param batch_size=500); "
            "values are read as int, float, true/false, none or text. `twinforge models` lists the models.",
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(
            "--epsilon",
            help="Train with differential privacy at this budget (e.g. 1; smaller is more private): "
            "auto, ctgan, tvae, ddpm (DP-SGD) and mst.",
        ),
    ] = None,
    delta: Annotated[
        float | None,
        typer.Option("--delta", help="DP delta (default min(1e-5, 0.1/rows)); must be below 1/rows."),
    ] = None,
    realistic_names: Annotated[
        bool,
        typer.Option(
            "--realistic-names",
            help="With --epsilon: plain fake names in PII name columns instead of pseudonyms ('Maria Lopez "
            "#4821', which no real name can equal); a DP fit keeps nothing of the real names, so a common fake "
            "name may then equal a real one by coincidence.",
        ),
    ] = False,
    entity_key: Annotated[
        str | None,
        typer.Option("--entity-key", help="Time series: the entity column of a long table (fits the sequence model)."),
    ] = None,
    time_key: Annotated[
        str | None, typer.Option("--time-key", help="Time series: the time column (datetimes or steps).")
    ] = None,
    static: Annotated[
        str | None,
        typer.Option("--static", help="Time series: a table of static attributes, one row per entity (optional)."),
    ] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit a model (default: auto) on DATA and save it to --out.

    With --entity-key/--time-key (or a --metadata that declares both keys), DATA is a long table of time series
    (one row per entity and time) and the sequence model learns the population; personalise it with
    `twinforge personalize`.

    Under --epsilon, PII names are pseudonyms ('Maria Lopez #4821') unless --realistic-names.

    Examples: twinforge fit customers.csv --out model/ --seed 0 --max-minutes 5 --param epochs=300 [--epsilon 1];
    twinforge fit events.csv --entity-key unit --time-key t --static units.csv --out fleet/
    """
    explicit, model = model is not None, model or DEFAULT_MODEL
    sequence = entity_key is not None or time_key is not None or static is not None or model == "sequence"
    if not sequence and not explicit and metadata is not None:
        # a long table declared in the metadata (entity key and time index) gets the sequence model, as the
        # same keys given as --entity-key/--time-key do; --model auto still fits rows (keys then only keep PII fakes
        # consistent within an entity)
        declared = twinforge.Metadata.from_json(metadata)
        sequence = declared.entity_key is not None and declared.time_index is not None
    if sequence and model == DEFAULT_MODEL:
        model = "sequence"
    if sequence and getattr(twinforge.models.get_class(model), "kind", "table") != "sequence":
        raise ParameterError(
            f"--entity-key/--time-key/--static fit time series; model {model!r} learns tables: "
            "use --model sequence (or drop the options)"
        )
    _check_model_out(out, overwrite, [data, metadata, static])
    params = _parse_params(model, param)
    synth = _create(model, seed, max_minutes, params, epsilon, delta)
    df = _read(data, table, query)
    if realistic_names:
        metadata = _realistic_names(df, metadata, epsilon, sequence)
    with _fitting(synth, f"fitting {model} on {len(df):,} rows x {df.shape[1]} columns"):
        if sequence:
            synth.fit(df, metadata=metadata, entity_key=entity_key, time_key=time_key, static=static)
        else:
            synth.fit(df, metadata=metadata)
    synth.save(out, overwrite=overwrite)
    console.print(
        f"fitted [bold]{escape(model)}[/] on {len(df):,} rows x {df.shape[1]} columns in "
        f"{synth.fit_info_['seconds']:.2f} s; saved to {escape(str(out))}",
        markup=True,
    )
    training = _training_line(getattr(synth, "training_", None) or getattr(synth, "train_info_", None))
    if training:  # how training ended: early stopping, the --max-minutes budget or the epoch limit
        console.print(f"training: {training}")
    if synth.fit_info_.get("privacy"):
        console.print(_privacy_line(synth.fit_info_["privacy"]))


def _realistic_names(df: Any, metadata: Path | None, epsilon: float | None, sequence: bool) -> twinforge.Metadata:
    """The metadata with ``fake_style="realistic"`` on every PII name column (``--realistic-names``)."""
    if epsilon is None:
        raise ParameterError(
            "--realistic-names applies to DP fits (--epsilon): without DP, fake names are realistic already and "
            "never equal a real one"
        )
    if sequence:
        raise ParameterError(
            '--realistic-names applies to table models; for time series set "fake_style": "realistic" on the '
            "name columns in the metadata JSON"
        )
    meta = twinforge.Metadata.from_json(metadata) if metadata is not None else twinforge.Metadata.detect(df)
    names = [c for c, spec in meta.columns.items() if spec.kind == "pii" and spec.pii_type in NAME_PII_TYPES]
    if not names:
        raise ParameterError(
            "--realistic-names: DATA has no PII name column (kind pii, pii_type name, first_name or last_name); "
            "declare one in the metadata JSON or drop the option"
        )
    for column in names:
        meta.update_column(column, fake_style="realistic")
    return meta


_STOPPED = {
    "early_stopping": "early stopping on the validation loss",
    "time_budget": "the time budget (--max-minutes)",
    "epochs": "the epoch limit",
    "privacy_budget": "the privacy budget (--epsilon)",
}


def _network_line(state: dict) -> str:
    """The network's width and depth, and (``auto``) its trunk passes per sampled row; "" if the state has none."""
    config = state.get("config") if isinstance(state.get("config"), dict) else {}
    if not isinstance(config.get("width"), int):
        return ""
    line = f"width {config['width']}" + (f", depth {config['depth']}" if isinstance(config.get("depth"), int) else "")
    groups = state.get("groups")
    if isinstance(groups, list) and groups:
        line += f", {len(groups)} passes per row"
    return line


def _training_line(training: Any) -> str | None:
    """How a neural model's training ended, from its saved state (None for models without a training loop)."""
    if not isinstance(training, dict) or "epochs" not in training:
        return None
    stopped = training.get("stopped")
    line = f"{training['epochs']} epochs" + (f" in {training['seconds']:.1f} s" if "seconds" in training else "")
    if stopped:
        line += f", stopped by {_STOPPED.get(stopped, stopped)}"
    if stopped == "early_stopping" and training.get("best_epoch") is not None:
        line += f" (weights of epoch {training['best_epoch']})"
    return line


def _privacy_line(info: dict[str, Any] | None) -> str:
    if not info:
        return "none (not differentially private)"
    return (
        f"differential privacy: epsilon {info['epsilon_spent']:.4g} spent of {info['epsilon_budget']:g}, "
        f"delta {info['delta_spent']:.3g}"
    )


@app.command()
@_user_errors
def sample(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by `twinforge fit`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz, .tsv or .parquet.")],
    rows: Annotated[int | None, typer.Option("--rows", "-n", help="Number of rows to generate (positive).")] = None,
    entities: Annotated[
        int | None,
        typer.Option(
            "--entities",
            help="Sequence models: number of new entities (whole time series); a twin: sequences like its entity's.",
        ),
    ] = None,
    event: Annotated[
        str | None,
        typer.Option("--event", help="Sequence models: every entity has this event, col=value or col=lo..hi."),
    ] = None,
    within: Annotated[
        int | None, typer.Option("--within", help="With --event: within this many steps (default: anywhere).")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            help="Condition, repeatable: col=value, col=a|b|c (set), col=lo..hi (range; lo.. or ..hi open), "
            "col= or col=null (missing).",
        ),
    ] = None,
    rebalance: Annotated[
        list[str] | None,
        typer.Option("--rebalance", help='Exact category mix, repeatable: "col=a:0.5,b:0.5" (null: missing).'),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Below 1: more typical rows; above 1: more diverse.")
    ] = 1.0,
    seed: DrawSeedOpt = None,
    workers: WorkersOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Generate --rows synthetic rows from a saved model into --out, streaming in chunks.

    A sequence model generates --entities new entities instead (static rows and whole time series, one long
    table); --where then conditions on static attributes. A twin (from `twinforge personalize`) generates
    --entities sequences like its entity's, from its start (a `sequence` column numbers them).

    Examples: twinforge sample model/ --rows 1000000 --out synthetic.parquet --where "age=30..40" --where "plan=pro";
    twinforge sample fleet/ --entities 100 --out fleet.csv --where site=north
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    twinforge.io.table_format(out)
    _workers(workers)
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[model_dir, model_dir / "model.json"])
    synth = twinforge.load(model_dir)
    if _is_twin(synth):
        _sample_twin(synth, entities, rows, out, where, rebalance, temperature, event, within, seed, overwrite)
        return
    if getattr(synth, "kind", "table") == "sequence":
        if rows is not None or rebalance or temperature != 1.0:
            raise ParameterError("a sequence model generates whole entities: use --entities N (not --rows, ...)")
        _sample_entities(synth, entities, out, where, event, within, seed, overwrite)
        return
    if entities is not None or event is not None or within is not None:
        raise ParameterError("--entities/--event/--within are for sequence models; this model makes rows: use --rows")
    if rows is None:
        raise ParameterError("--rows is required: the number of rows to generate, e.g. --rows 1000")
    _positive_rows(rows)
    conditions = _once([_parse_where(synth, w) for w in where or []], "--where")
    mixes = _once([_parse_rebalance(synth, r) for r in rebalance or []], "--rebalance")
    with _as_where():
        chunks = synth.sample_chunks(
            rows,
            seed=seed,
            conditions=conditions or None,
            rebalance=mixes or None,
            temperature=temperature,
            workers=workers,
        )
    columns = (TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("rows", total=rows)
        twinforge.io.write_chunks(chunks, out, overwrite=overwrite, on_chunk=lambda n: progress.advance(task, n))
    console.print(f"wrote {rows:,} rows to {out}")


@app.command()
@_user_errors
def impute(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by `twinforge fit`.")],
    data: Annotated[str, typer.Option("--data", help="Rows with missing cells to fill (.csv/.parquet/...).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz, .tsv or .parquet.")],
    seed: DrawSeedOpt = None,
    workers: WorkersOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fill the missing cells of --data with values drawn given the rest of each row; keep every other cell.

    Ids, free text and PII are not learned, so their missing cells stay missing.

    Example: twinforge impute model/ --data partial.csv --out filled.csv
    """
    twinforge.io.table_format(out)
    _workers(workers)
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[data, model_dir, model_dir / "model.json"])
    synth = twinforge.load(model_dir)
    if _is_twin(synth):
        raise ParameterError(
            f"{str(model_dir)!r} is a digital twin: it does not impute; `twinforge forecast` continues its history"
        )
    df = _read(data, None, None)
    filled = synth.impute(df, seed=seed, workers=workers)
    twinforge.write_table(filled, out, overwrite=overwrite, inputs=[data])
    cells = int(df.isna().to_numpy().sum() - filled.isna().to_numpy().sum())
    console.print(f"filled {cells:,} missing cells in {len(df):,} rows; wrote {out}")


def _is_twin(model: Any) -> bool:
    from twinforge.sequences import Twin

    return isinstance(model, Twin)


def _sample_twin(twin, entities, rows, out, where, rebalance, temperature, event, within, seed, overwrite) -> None:
    """``sample`` for a twin: --entities sequences like its entity's (its attributes and embedding)."""
    if rows is not None or where or rebalance or temperature != 1.0:
        raise ParameterError(
            "a twin generates whole sequences like its entity's: use --entities N (--rows, --where, --rebalance "
            "and --temperature are for table models); `twinforge forecast` continues its history"
        )
    if entities is None or entities <= 0:
        raise ParameterError(f"--entities must be a positive integer (sequences like its entity's), got {entities}")
    with _as_options(**{"event within": "--within"}):
        frame = twin.sample(entities, seed=seed, event=_parse_event(twin.model_, event, within))
    twinforge.write_table(frame, out, overwrite=overwrite)
    console.print(f"wrote {entities:,} sequences like entity {twin.entity!r} ({len(frame):,} rows) to {out}")


def _sample_entities(synth, entities, out, where, event, within, seed, overwrite) -> None:
    """``sample`` for a sequence model: --entities whole time series, --where on static attributes."""
    if entities is None:
        raise ParameterError("--entities is required for a sequence model: the number of new entities, e.g. 100")
    if entities <= 0:
        raise ParameterError(f"--entities must be a positive integer, got {entities}")
    statics, channels = synth.layout_["static_columns"], synth.layout_["channels"]
    for text in where or []:
        col = text.partition("=")[0].strip()
        if col and col not in statics:
            hint = f"; {col!r} is a channel: use --event {col}=... for it" if col in channels else ""
            raise ParameterError(
                f"--where {col!r}: a sequence model is conditioned on static attributes only; they are "
                f"{', '.join(statics) or 'none (this model has none)'}{hint}"
            )
    conditions = _once([_parse_where(synth.static_model_, w) for w in where or []], "--where")
    with console.status(f"sampling {entities:,} entities"), _as_where():
        frame = synth.sample(
            entities=entities, seed=seed, conditions=conditions or None, event=_parse_event(synth, event, within)
        )
    twinforge.write_table(frame, out, overwrite=overwrite)
    console.print(f"wrote {entities:,} entities ({len(frame):,} rows) to {out}")


def _parse_event(model: Any, text: str | None, within: int | None) -> dict[str, Any] | None:
    """``col=value`` or ``col=lo..hi`` (numeric channels; an empty end is open) -> an ``event=`` dict."""
    if text is None:
        if within is not None:
            raise ParameterError("--within needs --event")
        return None
    col, sep, value = text.partition("=")
    col, value = col.strip(), value.strip()
    if not sep or not col or not value:
        raise ParameterError(f"--event {text!r}: write col=value (e.g. status=failure) or col=lo..hi")
    blocks = {b["name"]: b for b in model.encoding_.blocks if b["name"] != "__gap__"}
    if col not in blocks:
        raise ParameterError(f"--event: {col!r} is not a channel; channels are {', '.join(blocks)}")
    event: dict[str, Any] = {"column": col, "value": value}
    if blocks[col]["kind"] == "num":
        low, dots, high = value.partition("..")
        try:
            bounds = [None if v.strip() == "" else float(v) for v in ((low, high) if dots else (value,))]
        except ValueError:
            raise ParameterError(f"--event {col!r}: {value!r} is not a number or a range lo..hi") from None
        event["value"] = tuple(bounds) if dots else bounds[0]
    if within is not None:
        event["within"] = within
    return event


@app.command()
@_user_errors
def personalize(
    model_dir: Annotated[Path, typer.Argument(help="A sequence model directory written by `twinforge fit`.")],
    history: Annotated[str, typer.Option("--history", help="One entity's rows of the long table (.csv/.parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the twin in.")],
    static: Annotated[
        str | None,
        typer.Option(
            "--static",
            help="The entity's static attributes, if not columns of --history: the static table given to `fit` "
            "(the entity's row is used) or a one-row table.",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs", help="Fine-tuning epochs (0: the population's view; default: tuned, see tune-twins, or 0)."
        ),
    ] = None,
    level: Annotated[
        float | None,
        typer.Option("--level", help="Level offset weight in [0, 2] (0: none; default: tuned, see tune-twins, or 0)."),
    ] = None,
    exact_epochs: Annotated[
        bool,
        typer.Option(
            "--exact-epochs", help="Train exactly --epochs (default: --epochs is a bound, chosen on the history)."
        ),
    ] = False,
    posterior: Annotated[
        bool | None,
        typer.Option(
            "--posterior/--no-posterior",
            help="Draw each path's entity latent from its posterior given the history (default: tuned, or no).",
        ),
    ] = None,
    seed: SeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Personalise a population sequence model to one entity (its history) and save the digital twin to --out.

    Example: twinforge personalize fleet/ --history unit7.csv --static units.csv --out twin7/ --seed 0
    """
    _check_model_out(out, overwrite, [history, model_dir, model_dir / "model.json", *([static] if static else [])])
    model = twinforge.load(model_dir)
    if getattr(model, "kind", "table") != "sequence" or not hasattr(model, "personalize"):
        raise ParameterError(f"{str(model_dir)!r} is not a sequence model: fit one with --entity-key/--time-key")
    frame = _read(history, None, None)
    key = model.layout_["entity_key"]
    if key in frame.columns and frame[key].nunique(dropna=False) > 1:
        raise ParameterError(
            f"the history must hold one entity; {key!r} has {frame[key].nunique(dropna=False)} distinct values: "
            "pass the rows of one entity"
        )
    values = None if static is None else _static_row(model, frame, _read(static, None, None), static)
    lacking = [c for c in model.layout_["static_columns"] if c not in frame.columns and c not in (values or {})]
    if lacking:
        raise ParameterError(
            f"the history lacks the static attributes {lacking}: add them as columns of --history, or pass "
            "--static with the static table given to `fit`"
        )
    select = False if exact_epochs else None
    twin = model.personalize(
        frame, epochs=epochs, level=level, select=select, posterior=posterior, static=values, seed=seed
    )
    twin.save(out, overwrite=overwrite)
    console.print(f"personalised to entity {twin.entity!r} on {len(frame):,} steps; twin saved to {out}")


def _static_row(model: Any, history: Any, table: Any, source: str) -> dict[str, Any]:
    """The history's entity's row of ``table`` (a static table with the entity key, or one row) as a dict."""
    key = model.layout_["entity_key"]
    if key in table.columns:
        if key not in history.columns:
            if len(table) != 1:
                raise ParameterError(
                    f"--static {source!r} has {len(table)} rows and the history has no {key!r} column to pick one: "
                    f"add {key!r} to the history, or give a one-row static table"
                )
            rows = table
        else:
            entity = history[key].iloc[0]
            entity = entity.item() if hasattr(entity, "item") else entity
            rows = table[table[key].astype(str) == str(entity)]
            if len(rows) != 1:
                raise ParameterError(
                    f"--static {source!r} has {len(rows)} rows for entity {entity!r} in column {key!r}: "
                    "give exactly one"
                )
        rows = rows.drop(columns=[key])
    elif len(table) != 1:
        raise ParameterError(
            f"--static {source!r} has no {key!r} column, so it must hold one row (this entity's), not {len(table)}"
        )
    else:
        rows = table
    return {str(c): v.item() if hasattr(v, "item") else v for c, v in rows.iloc[0].items()}


@app.command("tune-twins")
@_user_errors
def tune_twins(
    model_dir: Annotated[Path, typer.Argument(help="A sequence model directory written by `twinforge fit`.")],
    events: Annotated[str, typer.Option("--events", help="The training long table (.csv/.parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the tuned model in.")],
    static: Annotated[
        str | None, typer.Option("--static", help="Static attributes, one row per entity, if not in --events.")
    ] = None,
    ks: Annotated[str, typer.Option("--ks", help="History lengths to tune for, comma-separated.")] = "10,25",
    horizon: Annotated[int, typer.Option("--horizon", help="Steps forecast when scoring the candidates.")] = 25,
    seed: SeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Choose how twins adapt to short histories, on training entities held out from an inner fit; save to --out.

    Example: twinforge tune-twins fleet/ --events train.csv --out fleet-tuned/ --ks 10,25 --seed 0
    """
    _check_model_out(out, overwrite, [events, model_dir, model_dir / "model.json", *([static] if static else [])])
    try:
        lengths = [int(k) for k in ks.split(",") if k.strip()]
    except ValueError:
        raise ParameterError(f"--ks must be integers separated by commas, like 10,25; got {ks!r}") from None
    if not lengths:
        raise ParameterError("--ks is empty: give the history lengths to tune for, like 10,25")
    model = twinforge.load(model_dir)
    if getattr(model, "kind", "table") != "sequence" or not hasattr(model, "tune_personalization"):
        raise ParameterError(f"{str(model_dir)!r} is not a sequence model: fit one with --entity-key/--time-key")
    frame = _read(events, None, None)
    lay = model.layout_
    lacking = [c for c in lay["static_columns"] if c not in frame.columns]
    long_table = all(c in frame.columns for c in [lay["entity_key"], lay["time_key"], *lay["channels"]])
    if static is None and lacking and long_table:  # else the model's own message names what is missing
        raise ParameterError(
            f"--events lacks the static attributes {lacking}: add them as columns, or pass --static with the "
            "static table given to `fit`"
        )
    model.tune_personalization(frame, static=None if static is None else _read(static, None, None), ks=lengths,
                               horizon=horizon, seed=seed)  # fmt: skip
    model.save(out, overwrite=overwrite)
    for k, choice in zip(model.twin_policy_["ks"], model.twin_policy_["choices"], strict=True):
        console.print(f"history of {k} steps: {choice['name']}")
    console.print(f"tuned model saved to {out}")


@app.command()
@_user_errors
def forecast(
    twin_dir: Annotated[Path, typer.Argument(help="A twin directory written by `twinforge personalize`.")],
    horizon: Annotated[int, typer.Option("--horizon", help="Steps to forecast after the history.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz, .tsv or .parquet.")],
    paths: Annotated[int, typer.Option("--paths", help="Number of probabilistic paths.")] = 100,
    event: Annotated[
        str | None, typer.Option("--event", help="Every path has this event, col=value or col=lo..hi.")
    ] = None,
    within: Annotated[
        int | None, typer.Option("--within", help="With --event: within this many steps (default: the horizon).")
    ] = None,
    seed: DrawSeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Forecast --paths continuations of a twin's history, --horizon steps each, into --out (a long table with
    the entity key, a path column, the time and the channels).

    Example: twinforge forecast twin7/ --horizon 24 --paths 200 --out forecast.csv --event failure=1 --within 12
    """
    from twinforge.sequences import Twin

    twinforge.io.table_format(out)
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[twin_dir, twin_dir / "model.json"])
    twin = twinforge.load(twin_dir)
    if not isinstance(twin, Twin):
        raise ParameterError(f"{str(twin_dir)!r} is not a twin: make one with `twinforge personalize`")
    with _as_options(**{"event within": "--within"}):
        frame = twin.forecast(horizon, paths=paths, seed=seed, event=_parse_event(twin.model_, event, within))
    twinforge.write_table(frame, out, overwrite=overwrite)
    console.print(f"wrote {paths:,} paths x {horizon:,} steps for entity {twin.entity!r} to {out}")


def _once(pairs: list[tuple[str, Any]], option: str) -> dict[str, Any]:
    """``[(column, value), ...]`` as a dict; a column named twice is an error, not "the last one wins"."""
    out: dict[str, Any] = {}
    for col, value in pairs:
        if col in out:
            how = "one mix per column" if option == "--rebalance" else "one condition per column (a|b|c or lo..hi)"
            raise ParameterError(f"{option} {col!r} is given twice: give {how}")
        out[col] = value
    return out


def _parse_where(synth: twinforge.Synthesizer, text: str) -> tuple[str, Any]:
    """``col=value`` / ``col=a|b`` / ``col=lo..hi`` / ``col=`` -> (column, condition), typed by the column."""
    col, sep, value = text.partition("=")
    col = col.strip()
    if not sep or not col:
        raise ParameterError(f"--where {text!r}: write col=value, col=a|b|c, col=lo..hi or col=null")
    t = _learned_transform(synth, col, "--where")
    if value.strip() in ("", "null"):
        return col, None
    if t.discrete:
        if _level(t, value, col, "--where", strict=False) is not None:
            return col, _level(t, value, col, "--where")
        return col, [_level(t, v, col, "--where") for v in value.split("|")]
    if ".." in value:
        low, _, high = value.partition("..")
        return col, (_number(t, low, col), _number(t, high, col))
    if "|" in value:
        raise ParameterError(f"--where {text!r}: a set a|b|c needs a categorical column; for numbers use lo..hi")
    return col, _number(t, value, col)


def _parse_rebalance(synth: twinforge.Synthesizer, text: str) -> tuple[str, dict[Any, float]]:
    """``col=a:0.5,b:0.5`` -> (column, {level: share})."""
    col, sep, spec = text.partition("=")
    col = col.strip()
    if not sep or not col or not spec.strip():
        raise ParameterError(f"--rebalance {text!r}: write col=a:0.5,b:0.5")
    t = _learned_transform(synth, col, "--rebalance")
    if not t.discrete:
        raise ParameterError(f"--rebalance {col!r}: only categorical and boolean columns can be rebalanced")
    mix: dict[Any, float] = {}
    for part in spec.split(","):
        level, sep, share = part.rpartition(":")
        try:
            value = float(share)
        except ValueError:
            value = None
        if not sep or value is None:
            raise ParameterError(f"--rebalance {col!r}: {part!r} is not level:share, e.g. a:0.5")
        # after the share, so that an unknown level is named as such; null (or nothing) is the missing level
        mix[None if level.strip() in ("", "null") else _level(t, level, col, "--rebalance")] = value
    return col, mix


def _learned_transform(synth: twinforge.Synthesizer, col: str, option: str) -> Any:
    transforms = synth.transformer_.transforms_
    if col not in transforms:
        raise ParameterError(f"{option}: no column named {col!r}; columns are {', '.join(transforms)}")
    return transforms[col]


def _level(t: Any, text: str, col: str, option: str, strict: bool = True) -> Any:
    """The category (or boolean) written as ``text``; None if not found and not ``strict``."""
    if t.kind == "boolean":
        value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
        if value is None and strict:
            raise ParameterError(f"{option} {col!r}: boolean column, got {text!r}; use true or false")
        return value
    for level in t.levels_:
        if str(level) == text:
            return level
    if strict:
        from twinforge.models._request import levels_text

        known = levels_text(t.levels_, quote=False)
        raise ParameterError(f"{option} {col!r}: {text!r} is not a level of the column; {known}")
    return None


def _number(t: Any, text: str, col: str) -> Any:
    """A number for numeric columns (an int for integer ones), the text itself for datetimes; '' = open end."""
    text = text.strip()
    if text == "":
        return None
    if t.kind == "datetime":
        return text
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"--where {col!r}: {text!r} is not a number") from None
    return int(value) if getattr(t, "integer_", False) and value.is_integer() else value


@app.command()
@_user_errors
def metadata(
    data: DataArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the metadata JSON here.")] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Detect the kind of every column of DATA; print it, or save it with --out to edit and pass to `fit`."""
    if out is not None:
        twinforge.io.check_output(out, overwrite=overwrite, inputs=[data])
    df = _read(data, table, query)
    meta = twinforge.Metadata.detect(df)
    if out is None:
        sys.stdout.write(meta.to_json() + "\n")
        return
    meta.to_json(out)
    summary = Table("column", "kind", title=f"metadata of {data}")
    for name, spec in meta.columns.items():
        summary.add_row(name, spec.kind + (f" ({spec.pii_type})" if spec.pii_type else ""))
    console.print(summary)
    console.print(f"saved to {out}")


@app.command()
@_user_errors
def models() -> None:
    """List the available models."""
    listing = Table("model", "what it is")
    for name in twinforge.available_models():
        listing.add_row(name, twinforge.models.get_class(name).summary)
    console.print(listing)


@app.command()
@_user_errors
def info(model_dir: Annotated[Path, typer.Argument(help="A model directory written by `twinforge fit`.")]) -> None:
    """Show a saved model: name, parameters, training shape, metadata, version and fit time."""
    doc = twinforge.io.read_model_header(model_dir)
    fit_info = doc.get("fit_info", {})
    head = Table(show_header=False, title=str(model_dir))
    head.add_row("model", str(doc.get("model")))
    twin = doc.get("twin")
    if isinstance(twin, dict):
        how = twin.get("info") or {}
        setting = "posterior latent" if how.get("posterior") else f"{how.get('epochs', 0)} fine-tuning epochs"
        head.add_row(
            "digital twin",
            f"of entity {twin.get('entity')!r}, personalised on {how.get('steps', '?')} steps ({setting}, level "
            f"{how.get('level', 0):g}); the rows below describe its population model",
        )
    head.add_row("parameters", ", ".join(f"{k}={v!r}" for k, v in (doc.get("params") or {}).items()))
    head.add_row("trained on", f"{fit_info.get('rows', '?'):,} rows x {fit_info.get('columns', '?')} columns")
    head.add_row("fit time", f"{fit_info.get('seconds', float('nan')):.2f} s at {fit_info.get('fitted_at', '?')}")
    training = _training_line((doc.get("state") or {}).get("training") or (doc.get("state") or {}).get("train_info"))
    if training:
        head.add_row("training", training)
    network = _network_line(doc.get("state") or {})
    if network:
        head.add_row("network", network)
    fed = fit_info.get("federated")
    fed_privacy = (fed or {}).get("privacy") or {}
    fed_private = bool(fed_privacy.get("dp")) or fed_privacy.get("mode") == "local"
    if not fit_info.get("privacy") and fed_private:
        head.add_row("privacy", "differentially private training across the sites (see privacy spent)")
    else:
        head.add_row("privacy", _privacy_line(fit_info.get("privacy")))
    head.add_row("twinforge version", str(doc.get("twinforge_version")))
    head.add_row("format version", str(doc.get("format_version")))
    if fed:
        head.add_row(
            "federated",
            f"{fed.get('sites')} sites, {fed.get('rounds')} rounds x {fed.get('local_epochs')} local epochs, "
            f"{fed.get('strategy')}, {fed.get('bytes_per_round', 0):,} bytes per round",
        )
        privacy = fed.get("privacy") or {}
        if privacy.get("mode") == "local":
            sites = privacy.get("sites") or {}
            per_site = ", ".join(f"{k}: {v['epsilon']:.3g}" for k, v in sites.items())
            head.add_row(
                "privacy spent",
                f"local DP (DP-SGD on each site): max epsilon={privacy['epsilon']:g} at delta={privacy['delta']:g} "
                f"of a budget of {privacy['epsilon_budget']:g} per site; per site: {per_site}; unit of privacy: "
                f"one {privacy.get('unit', 'row')}",
            )
        elif privacy.get("dp"):
            head.add_row(
                "privacy spent",
                f"epsilon={privacy['epsilon']:g} at delta={privacy['delta']:g} over {privacy['releases']} releases "
                f"(noise multiplier {privacy['noise_multiplier']:g}, clipping norm {privacy['clipping_norm']:g})",
            )
        else:
            head.add_row("privacy spent", "no differential privacy (only aggregates left the sites)")
    console.print(head)
    columns = Table("column", "kind", title="metadata")
    meta = doc.get("metadata") or {}
    private = bool(fit_info.get("privacy")) or fed_private
    for name, spec in (meta.get("columns") or {}).items():
        kind = spec.get("kind", "?") + (f" ({spec['pii_type']})" if spec.get("pii_type") else "")
        if spec.get("pii_type") in NAME_PII_TYPES:  # which fakes come out (fake_style)
            kind += "; fakes: " + (spec.get("fake_style") or ("pseudonym" if private else "realistic"))
        columns.add_row(name, kind)
    console.print(columns)
    derived = [  # the default model's derived columns: computed from their inputs when sampled
        f"{c['column']} <- {', '.join(map(str, c['derive'].get('reference', [])))}"
        for c in (doc.get("state") or {}).get("columns") or []
        if isinstance(c, dict) and isinstance(c.get("derive"), dict)
    ]
    if derived:
        console.print("derived (computed from other columns when sampling): " + "; ".join(derived))
    keys = {k: meta.get(k) for k in ("primary_key", "entity_key", "time_index") if meta.get(k)}
    if keys:
        console.print("keys: " + ", ".join(f"{k}={v}" for k, v in keys.items()))


@app.command()
@_user_errors
def demo(
    model: Annotated[str, typer.Option("--model", "-m", help="Model to demonstrate.")] = DEFAULT_MODEL,
    rows: Annotated[
        int | None, typer.Option("--rows", "-n", help="Rows to generate (default: as many as real).")
    ] = None,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also save the synthetic table here.")] = None,
    overwrite: OverwriteOpt = False,
    max_minutes: Annotated[
        float, typer.Option("--max-minutes", help="Training time budget of the models that train for a while.")
    ] = 1.0,
    twins: Annotated[
        bool,
        typer.Option(
            "--twins",
            help="The digital-twin demo instead: simulate a turbine fleet, fit the sequence model, sample a new "
            "fleet, personalise one held-out unit and forecast it (twin vs population model), and generate "
            "rare failures on demand.",
        ),
    ] = False,
    units: Annotated[int, typer.Option("--units", help="--twins: turbines simulated (5 are held out).")] = 60,
    steps: Annotated[int, typer.Option("--steps", help="--twins: time steps per turbine.")] = 120,
) -> None:
    """Fit a model on the embedded churn data, sample, and compare real with synthetic side by side.

    With --twins: the digital-twin demo on a simulated wind-turbine fleet. Neural models stop training after
    --max-minutes (default 1), so the demo stays short on any machine.
    """
    from twinforge._demo import compare

    if twins:
        _twins_demo(model, rows, seed, out, overwrite, max_minutes, units, steps)
        return
    if getattr(twinforge.models.get_class(model), "kind", "table") == "sequence":
        raise ParameterError(f"model {model!r} learns time series: its demo is `twinforge demo --twins`")
    if rows is not None:
        _positive_rows(rows)
    if out is not None:
        twinforge.io.table_format(out)
        twinforge.io.check_output(out, overwrite=overwrite)
    real = twinforge.load_demo()
    budget = max_minutes if "max_minutes" in twinforge.models.get_class(model)._param_names() else None
    synth = _create(model, seed, budget)
    with _fitting(synth, f"fitting {model} on the demo data ({len(real):,} rows x {real.shape[1]} columns)"):
        synth.fit(real)
    fake = synth.sample(rows or len(real))
    console.print(
        f"[bold]twinforge demo[/]: telco churn, {len(real):,} real rows -> {len(fake):,} synthetic rows "
        f"with [bold]{escape(model)}[/] (fit {synth.fit_info_['seconds']:.2f} s)",
        markup=True,
    )
    for table in compare(real, fake, synth.metadata_):
        console.print(table)
    if out is not None:
        twinforge.write_table(fake, out, overwrite=overwrite)
        console.print(f"synthetic table saved to {out}")


def _twins_demo(
    model: str, rows: int | None, seed: int, out: Path | None, overwrite: bool, max_minutes: float, units: int,
    steps: int,
) -> None:  # fmt: skip
    from twinforge import _demo

    if model != DEFAULT_MODEL or rows is not None:
        raise ParameterError("--twins uses the sequence model on whole entities: drop --model and --rows")
    for name, value, low in (("--units", units, 8), ("--steps", steps, 27)):
        if value < low:
            raise ParameterError(f"{name} must be at least {low} for the twin demo, got {value}")
    if max_minutes <= 0:
        raise ParameterError(f"--max-minutes must be positive, got {max_minutes}")
    if out is not None:
        twinforge.io.table_format(out)
        twinforge.io.check_output(out, overwrite=overwrite)
    console.print(
        f"[bold]twinforge demo --twins[/]: {units} simulated wind turbines x {steps} steps; fitting the sequence "
        f"model on {units - 5} of them (at most {max_minutes:g} min)",
        markup=True,
    )
    tables, summary = _demo.twins(units=units, steps=steps, seed=seed, max_minutes=max_minutes, progress=True)
    console.print(
        f"fitted in {summary['fit_seconds']:.1f} s; sampled {summary['synthetic']['unit_id'].nunique()} new turbines. "
        f"Twin of {summary['unit']} (hidden wear rate {summary['wear_rate']:.4f}, fleet median "
        f"{summary['fleet_median_wear_rate']:.4f}), personalised on its first 25 steps:"
    )
    for table in tables:
        console.print(table)
    console.print("CRPS and MAE are in units of each channel's standard deviation over the fleet (lower is better).")
    if out is not None:
        twinforge.write_table(summary["synthetic"], out, overwrite=overwrite)
        console.print(f"synthetic fleet saved to {out}")


SIMULATORS = ("turbines", "patients")
EVENT_NOUN = {"turbines": ("failure", "failures"), "patients": ("adverse event", "adverse events")}


def _count(n: int, noun: tuple[str, str]) -> str:
    return f"{n:,} {noun[0] if n == 1 else noun[1]}"


@app.command()
@_user_errors
def simulate(
    kind: Annotated[str, typer.Argument(help="What to simulate: turbines (a wind fleet) or patients (Mesa agents).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="A folder (gets events.csv, static.csv, hidden.csv) or a table file such as fleet.parquet "
            "(the events; fleet.static.parquet and fleet.hidden.parquet go beside it).",
        ),
    ],
    units: Annotated[int, typer.Option("--units", "-n", help="Number of units (turbines or patients).")] = 100,
    steps: Annotated[int, typer.Option("--steps", "-t", help="Time steps per unit.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same arguments give the same tables.")] = 0,
    start: Annotated[
        str | None, typer.Option("--start", help="Start date: the time column holds dates instead of step numbers.")
    ] = None,
    missing_rate: Annotated[float, typer.Option("--missing-rate", help="Share of sensor readings lost (NaN).")] = 0.0,
    drop_rate: Annotated[
        float, typer.Option("--drop-rate", help="Share of rows not recorded (irregular sampling).")
    ] = 0.0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Simulate a population with known ground truth: per-unit time series, static attributes, hidden parameters.

    Example: twinforge simulate turbines --units 1000 --steps 500 --seed 0 --out fleet/
    """
    import twinforge.simulate as sim

    if kind not in SIMULATORS:
        raise ParameterError(f"unknown simulation {kind!r}: choose one of {', '.join(SIMULATORS)}")
    size = {"turbines": "n_units", "patients": "n_patients"}[kind]
    options = {size: units, "n_steps": steps, "seed": seed, "start": start}
    options.update(missing_rate=missing_rate, drop_rate=drop_rate)
    names = {size: "--units", "n_steps": "--steps", "seed": "--seed", "missing_rate": "--missing-rate"}
    names["drop_rate"] = "--drop-rate"
    with console.status(f"simulating {units:,} {kind} over {steps:,} steps"):
        try:
            result = getattr(sim, kind)(**options)
        except ParameterError as exc:
            text = str(exc)
            for arg, option in names.items():
                text = text.replace(f"{arg} must", f"{option} must", 1) if text.startswith(arg) else text
            raise ParameterError(text) from None
    paths = result.save(out, overwrite=overwrite)
    events = result.events
    console.print(
        f"simulated {len(result.static):,} {kind}: {len(events):,} rows, "
        f"{_count(int(events['failure'].sum()), EVENT_NOUN[kind])} (the failure channel); wrote "
        + ", ".join(str(p) for p in paths.values())
    )


@app.command("evaluate")
@_user_errors
def evaluate_command(
    real: Annotated[str, typer.Option("--real", help="The real table the generator was trained on.")],
    synthetic: Annotated[str, typer.Option("--synthetic", help="The synthetic table to evaluate.")],
    json_out: Annotated[Path, typer.Option("--json", help="Write the JSON summary here.")],
    holdout: Annotated[
        str | None, typer.Option("--holdout", help="Real rows the generator never saw (for utility and privacy).")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Column to predict for utility (TSTR/TRTR).")] = None,
    sensitive: Annotated[
        list[str] | None, typer.Option("--sensitive", help="Column an attacker tries to infer; repeat for more.")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the HTML report here.")] = None,
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Metadata JSON (from `twinforge metadata`); detected if omitted.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the subsamples and models.")] = 0,
    entity_key: Annotated[
        str | None,
        typer.Option("--entity-key", help="Per-entity time series: the column identifying each entity."),
    ] = None,
    time_key: Annotated[
        str | None, typer.Option("--time-key", help="Per-entity time series: the time index (step or timestamp).")
    ] = None,
    real_static: Annotated[
        str | None,
        typer.Option(
            "--real-static",
            help="Static attributes of the real entities (one row each). Given alone (the synthetic table from "
            "`sample` holds them as columns), it is joined into --real and --holdout.",
        ),
    ] = None,
    synthetic_static: Annotated[
        str | None, typer.Option("--synthetic-static", help="Static attributes of the synthetic entities.")
    ] = None,
    lags: Annotated[int, typer.Option("--lags", help="Lags of the autocorrelation curves (time series).")] = 10,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model", help="The model directory that generated SYNTHETIC: its DP budget goes in the report."),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Score SYNTHETIC against REAL for fidelity, utility and privacy; write a JSON summary and an HTML report.

    With --entity-key and --time-key (long tables of per-entity time series) the report also scores the time
    series: autocorrelation and cross-correlation errors, discriminative and predictive scores, sequence lengths
    and static attributes.

    Example: twinforge evaluate --real train.csv --synthetic synthetic.csv --holdout holdout.csv
    --target churn --json scores.json --report report.html
    """
    inputs = [real, synthetic, holdout, metadata, real_static, synthetic_static]
    outputs = [json_out] + ([report] if report is not None else [])
    for out in outputs:
        twinforge.io.check_output(out, overwrite=overwrite, inputs=inputs)
    if report is not None and Path(report).resolve() == Path(json_out).resolve():
        raise ParameterError("--json and --report name the same file: give them different paths")
    budget = twinforge.load(model_dir) if model_dir is not None else None
    result = twinforge.evaluate(
        real,
        synthetic,
        holdout,
        metadata=metadata,
        target=target,
        sensitive=sensitive,
        seed=seed,
        entity_key=entity_key,
        time_key=time_key,
        real_static=real_static,
        synthetic_static=synthetic_static,
        lags=lags,
        privacy_budget=budget,
    )
    result.to_json(json_out, overwrite=overwrite)
    if report is not None:
        result.to_html(report, overwrite=overwrite)
    summary = Table(title="twinforge evaluation")
    summary.add_column("section")
    summary.add_column("metric", no_wrap=True)
    summary.add_column("value", justify="right")
    summary.add_column("ideal", justify="right")
    summary.add_column("what it means")
    for row in result.summary:
        summary.add_row(row["section"], row["metric"], _score(row["value"]), _score(row["ideal"]), row["meaning"])
    console.print(summary)
    if budget is not None:
        console.print(f"privacy of the generator: {_privacy_line(budget.fit_info_.get('privacy'))}")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {json_out}" + (f" and {report}" if report is not None else ""))


federated_app = typer.Typer(
    help="Train one model across sites that keep their rows (Flower). Needs the `federated` extra.",
    no_args_is_help=True,
)
app.add_typer(federated_app, name="federated")

RoundsOpt = Annotated[int, typer.Option("--rounds", "-r", help="Federated rounds.")]
FedModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="auto, tvae, ctgan, ddpm, or sequence (per-entity time series).")
]
FedEntityOpt = Annotated[
    str | None,
    typer.Option(
        "--entity-key", help="-m sequence: the entity column of every site's long table (default: the metadata's)."
    ),
]
FedTimeOpt = Annotated[
    str | None,
    typer.Option("--time-key", help="-m sequence: the time column, datetimes or steps (default: the metadata's)."),
]
FedStaticOpt = Annotated[
    str | None,
    typer.Option(
        "--static",
        help="-m sequence: static columns of the long table (constant within an entity), comma-separated; "
        "simulate detects them when omitted, the server then takes none.",
    ),
]
LocalEpochsOpt = Annotated[int, typer.Option("--local-epochs", help="Epochs each site trains per round.")]
StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy", help="fedavg; fedprox for sites whose data differ (non-IID); fedavgm (server momentum)."
    ),
]
MuOpt = Annotated[float, typer.Option("--proximal-mu", help="FedProx's proximal weight mu.")]
MomentumOpt = Annotated[float, typer.Option("--server-momentum", help="FedAvgM's server momentum.")]
LrDecayOpt = Annotated[
    float | None,
    typer.Option(
        "--lr-decay",
        help="Sites' learning rate in the last round as a share of the first (cosine); default 0.1, 1 with DP.",
    ),
]
DpOpt = Annotated[
    str,
    typer.Option(
        "--dp",
        help="Differential privacy: 'none'; 'central' (DP-FedAvg: sites clip updates, the server adds noise; "
        "protects whole sites); 'local' (DP-SGD on each site, --epsilon per site; protects each row, or with "
        "-m sequence each whole entity).",
    ),
]
FedEpsilonOpt = Annotated[
    float | None,
    typer.Option("--epsilon", help="--dp local: each site's privacy budget (1 is strong, 10 is weak)."),
]
NoiseOpt = Annotated[float, typer.Option("--noise-multiplier", help="DP: noise std / clipping norm on updates.")]
ClipOpt = Annotated[float, typer.Option("--clipping-norm", help="DP: L2 bound of each site's update.")]
StatsNoiseOpt = Annotated[
    float, typer.Option("--stats-noise-multiplier", help="DP: noise std / sensitivity on the agreed statistics.")
]
StatsShareOpt = Annotated[
    float,
    typer.Option("--stats-share", help="--dp local: share of epsilon the agreed statistics take (the rest trains)."),
]
DeltaOpt = Annotated[
    float,
    typer.Option("--delta", help="DP: the delta (per site with --dp local); must be below 1/rows (1/entities)."),
]
MinSitesOpt = Annotated[int | None, typer.Option("--min-sites", help="Sites needed to start and per round.")]
TimeoutOpt = Annotated[
    float, typer.Option("--round-timeout", help="Seconds a round waits; later sites are left out of it.")
]
FedParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Model parameter NAME=VALUE, repeatable (e.g. --param width=128), as for `twinforge fit`.",
    ),
]
MetaOpt = Annotated[
    Path | None,
    typer.Option("--metadata", help="The agreed schema (JSON from `twinforge metadata`); detected if omitted."),
]


# the options `federated simulate` and `federated server` share, named as FederatedSettings' fields
_FED_OPTIONS = (
    "model",
    "rounds",
    "local_epochs",
    "strategy",
    "proximal_mu",
    "server_momentum",
    "lr_decay",
    "dp",
    "epsilon",
    "stats_share",
    "noise_multiplier",
    "clipping_norm",
    "stats_noise_multiplier",
    "delta",
    "min_sites",
    "round_timeout",
    "seed",
    "overwrite",
)


def _fed_settings(options: dict[str, Any]) -> dict[str, Any]:
    """FederatedSettings keyword arguments from a command's options (its ``locals()``); None means default.

    ``--entity-key``/``--time-key``/``--static`` make the model ``sequence`` (unless another is named: then
    the settings' check says they do not go together).
    """
    out = {k: options[k] for k in _FED_OPTIONS if options.get(k) is not None}
    roles = {k: options.get(k) for k in ("entity_key", "time_key", "static")}
    if any(v is not None for v in roles.values()) or out.get("model") == "sequence":
        if out.get("model") == DEFAULT_MODEL:
            out["model"] = "sequence"
        static = roles["static"]
        roles["static"] = None if static is None else [c.strip() for c in static.split(",") if c.strip()]
        out["sequence"] = {k: v for k, v in roles.items() if v is not None}
    if options.get("param"):
        out["params"] = _parse_params(out.get("model", DEFAULT_MODEL), options["param"])
    return out


def _sites(data: list[str], partition_by: str | None) -> tuple[list[Any], list[str]]:
    if not data:
        raise ParameterError("--data: give one table per site (or one table and --partition-by COLUMN)")
    if partition_by is None:
        if len(data) < 2:
            raise ParameterError("--data: a federation needs two or more sites (or use --partition-by COLUMN)")
        names = [Path(d).stem for d in data]
        if len(set(names)) < len(names):
            names = [f"site{i + 1}-{n}" for i, n in enumerate(names)]
        return [twinforge.read_table(d) for d in data], names
    if len(data) != 1:
        raise ParameterError("--partition-by splits ONE table into sites: give a single --data file")
    df = twinforge.read_table(data[0])
    if partition_by not in df.columns:
        raise ParameterError(f"--partition-by: no column {partition_by!r}; columns are {list(df.columns)}")
    if df[partition_by].isna().any():
        raise ParameterError(f"--partition-by: column {partition_by!r} has missing values; fill them first")
    groups = list(df.groupby(partition_by, sort=True))
    if not 2 <= len(groups) <= 100:
        raise ParameterError(
            f"--partition-by: column {partition_by!r} has {len(groups)} values; it needs 2 to 100 (one site each)"
        )
    return [g.reset_index(drop=True) for _, g in groups], [f"{partition_by}={v}" for v, _ in groups]


@contextlib.contextmanager
def _round_progress(rounds: int) -> Any:
    """Rounds as a progress bar on stderr (the federated logger says when one is done); Flower's log quieted."""
    import logging

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)
    fed_log = logging.getLogger("twinforge.federated")
    with Progress(
        TextColumn("federated rounds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
    ) as bar:
        task = bar.add_task("rounds", total=rounds)

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                msg = record.getMessage()
                if msg.startswith("round "):
                    bar.update(task, completed=int(msg.split()[1].split("/")[0]))
                elif record.levelno >= logging.WARNING:
                    err_console.print(f"[yellow]warning:[/] {escape(msg)}", highlight=False, markup=True)

        handler = _Handler()
        fed_log.addHandler(handler)
        old = fed_log.level
        fed_log.setLevel(logging.INFO)
        try:
            yield
        finally:
            fed_log.removeHandler(handler)
            fed_log.setLevel(old)
            flwr_log.setLevel(level)


def _print_federated(model_dir: Path) -> None:
    doc = twinforge.io.read_model_header(model_dir)
    fed = doc["fit_info"]["federated"]
    privacy = fed["privacy"]
    spent = f"epsilon={privacy['epsilon']:g} at delta={privacy['delta']:g}" if privacy["dp"] else "no DP"
    if privacy.get("mode") == "local":
        unit = privacy.get("unit", "row")
        spent = f"local {unit}-level DP, max epsilon={privacy['epsilon']:g} per site at delta={privacy['delta']:g}"
    console.print(
        f"trained [bold]{escape(str(doc['model']))}[/] across {fed['sites']} sites, {fed['rounds']} rounds "
        f"({fed['bytes_per_round']:,} bytes per round, {escape(spent)}); saved to {escape(str(model_dir))}",
        markup=True,
    )


@federated_app.command("simulate", context_settings={"allow_extra_args": True})
@_user_errors
def federated_simulate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the global model in.")],
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="One table per site: --data a.csv b.csv c.csv (or repeat --data)."),
    ] = None,
    partition_by: Annotated[
        str | None, typer.Option("--partition-by", help="Split ONE table into sites by this column's values.")
    ] = None,
    rounds: RoundsOpt = 10,
    model: FedModelOpt = DEFAULT_MODEL,
    param: FedParamOpt = None,
    entity_key: FedEntityOpt = None,
    time_key: FedTimeOpt = None,
    static: FedStaticOpt = None,
    local_epochs: LocalEpochsOpt = 1,
    strategy: StrategyOpt = "fedavg",
    proximal_mu: MuOpt = 0.01,
    server_momentum: MomentumOpt = 0.9,
    lr_decay: LrDecayOpt = None,
    metadata: MetaOpt = None,
    dp: DpOpt = "none",
    epsilon: FedEpsilonOpt = None,
    stats_share: StatsShareOpt = 0.25,
    noise_multiplier: NoiseOpt = 1.0,
    clipping_norm: ClipOpt = 1.0,
    stats_noise_multiplier: StatsNoiseOpt = 2.0,
    delta: DeltaOpt = 1e-5,
    min_sites: MinSitesOpt = None,
    round_timeout: TimeoutOpt = 600.0,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Simulate a federation in this process: each table (or each --partition-by group) is a site.

    The sites run the same Flower ClientApp as a deployment and share only aggregates and weights.
    The result is an ordinary model directory: `twinforge sample MODEL_DIR -n 1000 -o synthetic.csv`.

    With -m sequence (or --entity-key/--time-key), every table is a long table of per-entity time series and
    each site holds whole entities: `twinforge sample MODEL_DIR --entities 100`.

    Example: twinforge federated simulate --data north.csv south.csv --rounds 20 --out model/;
    twinforge federated simulate --data a.csv b.csv -m sequence --entity-key unit --time-key t --out fleet/
    """
    options = dict(locals())
    data = [*(data or []), *ctx.args]
    extra = [a for a in data if a.startswith("-")]
    if extra:
        raise ParameterError(f"unknown option(s) {extra}; see `twinforge federated simulate --help`")
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[*data, metadata])
    from twinforge.federated import simulate

    frames, names = _sites(data, partition_by)
    with _round_progress(rounds):
        simulate(
            frames,
            out,
            metadata=metadata,
            site_names=names,
            **_fed_settings(options),
        )
    _print_federated(out)


@federated_app.command("server")
@_user_errors
def federated_server(
    metadata: Annotated[
        Path, typer.Option("--metadata", help="The agreed schema every site's table must match (JSON).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the global model in.")],
    host: Annotated[str, typer.Option("--host", help="Interface the SuperLink listens on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option("--port", help="Port the sites connect to (the SuperLink's).")] = 9092,
    rounds: RoundsOpt = 10,
    model: FedModelOpt = DEFAULT_MODEL,
    param: FedParamOpt = None,
    entity_key: FedEntityOpt = None,
    time_key: FedTimeOpt = None,
    static: FedStaticOpt = None,
    local_epochs: LocalEpochsOpt = 1,
    strategy: StrategyOpt = "fedavg",
    proximal_mu: MuOpt = 0.01,
    server_momentum: MomentumOpt = 0.9,
    lr_decay: LrDecayOpt = None,
    dp: DpOpt = "none",
    epsilon: FedEpsilonOpt = None,
    stats_share: StatsShareOpt = 0.25,
    noise_multiplier: NoiseOpt = 1.0,
    clipping_norm: ClipOpt = 1.0,
    stats_noise_multiplier: StatsNoiseOpt = 2.0,
    delta: DeltaOpt = 1e-5,
    min_sites: Annotated[int, typer.Option("--min-sites", help="Sites needed to start and per round.")] = 2,
    wait_sites: Annotated[
        float,
        typer.Option(
            "--wait-sites",
            help="Seconds to wait for --min-sites sites, at the start and in every round (then stop, resumable).",
        ),
    ] = 600.0,
    round_timeout: TimeoutOpt = 600.0,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run the federation's server (a Flower SuperLink) and train across the sites that join; save the model.

    Sites join with `twinforge federated client --data local.csv --server THIS_HOST:PORT`. Restarted with the
    same options after a crash, the server resumes from its last finished round.

    With -m sequence the sites hold long tables of per-entity time series (whole entities each); the entity key
    and time come from --entity-key/--time-key or the metadata's, and --static names the static columns.

    Example: twinforge federated server --metadata schema.json --out model/ --rounds 20 --min-sites 3
    """
    options = dict(locals())
    import json

    from twinforge.federated import FederatedSettings
    from twinforge.federated._deploy import serve

    twinforge.io.check_output(out, overwrite=overwrite, inputs=[metadata])
    meta = twinforge.Metadata.from_json(metadata)
    settings = FederatedSettings(
        out=str(out),
        metadata=json.loads(json.dumps(meta.to_dict())),
        wait_sites_seconds=wait_sites,
        **_fed_settings(options),
    )
    err_console.print(f"SuperLink on {host}:{port}; waiting for {min_sites} site(s)")
    with _stop_on_sigterm():  # the SuperLink stops with this command; restarted, it resumes
        serve(settings, host=host, port=port)
    _print_federated(out)


@federated_app.command("client")
@_user_errors
def federated_client(
    data: Annotated[str, typer.Option("--data", "-d", help="This site's table; it never leaves this machine.")],
    server: Annotated[str, typer.Option("--server", "-s", help="The server's HOST:PORT.")],
    name: Annotated[str | None, typer.Option("--name", help="This site's name in the server's log.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Local port of this site's SuperNode runtime (default: a free one).")
    ] = None,
) -> None:
    """Join a federation as a site (a Flower SuperNode): answer the server with aggregates and trained weights.

    Runs until stopped (Ctrl-C); rejoins by itself when the server restarts. Only the model's weights and
    aggregate counts are sent, never a row.

    Example: twinforge federated client --data ward_a.csv --server 10.0.0.5:9092
    """
    from twinforge.federated._deploy import run_site

    err_console.print(f"site {name or Path(data).stem}: joining {server}; Ctrl-C to stop")
    with _stop_on_sigterm():  # the SuperNode and its ClientApps stop with this command
        run_site(data, server, name=name, port=port, say=err_console.print)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager) unwinds like Ctrl-C, so child processes are stopped, not orphaned."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _score(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:  # pragma: no cover - entry point
    app()
