"""The ``twinforge`` command: a thin Typer layer over the public API.

Every error a user can cause is printed as one message on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import twinforge
from twinforge.errors import ParameterError, TwinforgeError

app = typer.Typer(
    name="twinforge",
    help="Synthetic data that is faithful, useful and private. Start with `twinforge demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)

DataArg = Annotated[str, typer.Argument(help="Input table: a .csv/.csv.gz/.tsv/.parquet file, or a SQLAlchemy URL.")]
TableOpt = Annotated[str | None, typer.Option("--table", help="Table name, when DATA is a SQL URL.")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="SQL query, when DATA is a SQL URL.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace the output if it exists.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for reproducible results.")]
DEFAULT_MODEL = "auto"


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a TwinforgeError into one red line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwinforgeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: no output was written")
            raise typer.Exit(130) from None

    return wrapper


def _positive_rows(rows: int) -> int:
    if rows <= 0:
        raise ParameterError(f"--rows must be a positive integer, got {rows}")
    return rows


def _read(data: str, table: str | None, query: str | None):
    with console.status(f"reading {data}"):
        return twinforge.read_table(data, table=table, query=query)


def _create(model: str, seed: int | None, max_minutes: float | None = None) -> twinforge.Synthesizer:
    """A new model; ``max_minutes`` only for the models that train for a while."""
    params = {}
    if max_minutes is not None:
        if "max_minutes" not in twinforge.models.get_class(model)._param_names():
            raise ParameterError(
                f"--max-minutes: model {model!r} has no training time budget (it fits in one pass); drop the option"
            )
        params["max_minutes"] = max_minutes
    return twinforge.create(model, seed=seed, **params)


def _fitting(synth: twinforge.Synthesizer, message: str) -> contextlib.AbstractContextManager:
    """A spinner, unless the model shows its own progress bar (two live displays cannot share a terminal)."""
    return contextlib.nullcontext() if getattr(synth, "progress", False) else console.status(message)


@app.command()
@_user_errors
def fit(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the fitted model in.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name; see `twinforge models`.")] = DEFAULT_MODEL,
    seed: SeedOpt = None,
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Metadata JSON (from `twinforge metadata`); detected if omitted.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Training time budget in minutes (neural models).")
    ] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit a model (default: auto) on DATA and save it to --out.

    Example: twinforge fit customers.csv --out model/ --seed 0 --max-minutes 5
    """
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[data, metadata])
    synth = _create(model, seed, max_minutes)
    df = _read(data, table, query)
    with _fitting(synth, f"fitting {model} on {len(df):,} rows x {df.shape[1]} columns"):
        synth.fit(df, metadata=metadata)
    synth.save(out, overwrite=overwrite)
    console.print(
        f"fitted [bold]{model}[/] on {len(df):,} rows x {df.shape[1]} columns in "
        f"{synth.fit_info_['seconds']:.2f} s; saved to {out}"
    )


@app.command()
@_user_errors
def sample(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by `twinforge fit`.")],
    rows: Annotated[int, typer.Option("--rows", "-n", help="Number of rows to generate (positive).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz, .tsv or .parquet.")],
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
        typer.Option("--rebalance", help='Exact category mix, repeatable: "col=a:0.5,b:0.5".'),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Below 1: more typical rows; above 1: more diverse.")
    ] = 1.0,
    seed: SeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Generate --rows synthetic rows from a saved model into --out, streaming in chunks.

    Example: twinforge sample model/ --rows 1000000 --out synthetic.parquet --where "age=30..40" --where "plan=pro"
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    _positive_rows(rows)
    twinforge.io.table_format(out)
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[model_dir, model_dir / "model.json"])
    synth = twinforge.load(model_dir)
    conditions = dict(_parse_where(synth, w) for w in where or [])
    mixes = dict(_parse_rebalance(synth, r) for r in rebalance or [])
    chunks = synth.sample_chunks(
        rows, seed=seed, conditions=conditions or None, rebalance=mixes or None, temperature=temperature
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
    seed: SeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fill the missing cells of --data with values drawn given the rest of each row; keep every other cell.

    Example: twinforge impute model/ --data partial.csv --out filled.csv
    """
    twinforge.io.table_format(out)
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[data, model_dir, model_dir / "model.json"])
    synth = twinforge.load(model_dir)
    df = _read(data, None, None)
    filled = synth.impute(df, seed=seed)
    twinforge.write_table(filled, out, overwrite=overwrite, inputs=[data])
    cells = int(df.isna().to_numpy().sum() - filled.isna().to_numpy().sum())
    console.print(f"filled {cells:,} missing cells in {len(df):,} rows; wrote {out}")


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
            mix[_level(t, level, col, "--rebalance")] = float(share)
        except ValueError:
            raise ParameterError(f"--rebalance {col!r}: {part!r} is not level:share, e.g. a:0.5") from None
        if not sep:
            raise ParameterError(f"--rebalance {col!r}: {part!r} is not level:share, e.g. a:0.5")
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
        shown = ", ".join(map(str, t.levels_[:10])) + (", ..." if len(t.levels_) > 10 else "")
        raise ParameterError(f"{option} {col!r}: {text!r} is not a level of the column; levels are {shown}")
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
    head.add_row("parameters", ", ".join(f"{k}={v!r}" for k, v in (doc.get("params") or {}).items()))
    head.add_row("trained on", f"{fit_info.get('rows', '?'):,} rows x {fit_info.get('columns', '?')} columns")
    head.add_row("fit time", f"{fit_info.get('seconds', float('nan')):.2f} s at {fit_info.get('fitted_at', '?')}")
    head.add_row("twinforge version", str(doc.get("twinforge_version")))
    head.add_row("format version", str(doc.get("format_version")))
    fed = fit_info.get("federated")
    if fed:
        head.add_row(
            "federated",
            f"{fed.get('sites')} sites, {fed.get('rounds')} rounds x {fed.get('local_epochs')} local epochs, "
            f"{fed.get('strategy')}, {fed.get('bytes_per_round', 0):,} bytes per round",
        )
        privacy = fed.get("privacy") or {}
        if privacy.get("dp"):
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
    for name, spec in (meta.get("columns") or {}).items():
        columns.add_row(name, spec.get("kind", "?") + (f" ({spec['pii_type']})" if spec.get("pii_type") else ""))
    console.print(columns)
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
) -> None:
    """Fit a model on the embedded churn data, sample, and compare real with synthetic side by side.

    Neural models stop training after --max-minutes (default 1), so the demo stays short on any machine.
    """
    from twinforge._demo import compare

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
        f"with [bold]{model}[/] (fit {synth.fit_info_['seconds']:.2f} s)"
    )
    for table in compare(real, fake, synth.metadata_):
        console.print(table)
    if out is not None:
        twinforge.write_table(fake, out, overwrite=overwrite)
        console.print(f"synthetic table saved to {out}")


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
    overwrite: OverwriteOpt = False,
) -> None:
    """Score SYNTHETIC against REAL for fidelity, utility and privacy; write a JSON summary and an HTML report.

    Example: twinforge evaluate --real train.csv --synthetic synthetic.csv --holdout holdout.csv
    --target churn --json scores.json --report report.html
    """
    inputs = [real, synthetic, holdout, metadata]
    outputs = [json_out] + ([report] if report is not None else [])
    for out in outputs:
        twinforge.io.check_output(out, overwrite=overwrite, inputs=inputs)
    if report is not None and Path(report).resolve() == Path(json_out).resolve():
        raise ParameterError("--json and --report name the same file: give them different paths")
    result = twinforge.evaluate(
        real, synthetic, holdout, metadata=metadata, target=target, sensitive=sensitive, seed=seed
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
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {json_out}" + (f" and {report}" if report is not None else ""))


federated_app = typer.Typer(
    help="Train one model across sites that keep their rows (Flower). Needs the `federated` extra.",
    no_args_is_help=True,
)
app.add_typer(federated_app, name="federated")

RoundsOpt = Annotated[int, typer.Option("--rounds", "-r", help="Federated rounds.")]
FedModelOpt = Annotated[str, typer.Option("--model", "-m", help="auto, tvae, ctgan or ddpm.")]
LocalEpochsOpt = Annotated[int, typer.Option("--local-epochs", help="Epochs each site trains per round.")]
StrategyOpt = Annotated[
    str, typer.Option("--strategy", help="fedavg, or fedprox for sites whose data differ (non-IID).")
]
MuOpt = Annotated[float, typer.Option("--proximal-mu", help="FedProx's proximal weight mu.")]
DpOpt = Annotated[
    bool,
    typer.Option(
        "--dp", help="Differential privacy: noisy statistics, clipped updates with Gaussian noise, accounted."
    ),
]
NoiseOpt = Annotated[float, typer.Option("--noise-multiplier", help="DP: noise std / clipping norm on updates.")]
ClipOpt = Annotated[float, typer.Option("--clipping-norm", help="DP: L2 bound of each site's update.")]
StatsNoiseOpt = Annotated[
    float, typer.Option("--stats-noise-multiplier", help="DP: noise std / sensitivity on the agreed statistics.")
]
DeltaOpt = Annotated[float, typer.Option("--delta", help="DP: the delta the spent epsilon is reported at.")]
MinSitesOpt = Annotated[int | None, typer.Option("--min-sites", help="Sites needed to start and per round.")]
TimeoutOpt = Annotated[
    float, typer.Option("--round-timeout", help="Seconds a round waits; later sites are left out of it.")
]
MetaOpt = Annotated[
    Path | None,
    typer.Option("--metadata", help="The agreed schema (JSON from `twinforge metadata`); detected if omitted."),
]


def _fed_settings(**kwargs: Any) -> dict[str, Any]:
    """Keyword arguments of FederatedSettings, dropping options left at None."""
    return {k: v for k, v in kwargs.items() if v is not None}


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
                    err_console.print(f"[yellow]warning:[/] {msg}", highlight=False)

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
    console.print(
        f"trained [bold]{doc['model']}[/] across {fed['sites']} sites, {fed['rounds']} rounds "
        f"({fed['bytes_per_round']:,} bytes per round, {spent}); saved to {model_dir}"
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
    local_epochs: LocalEpochsOpt = 1,
    strategy: StrategyOpt = "fedavg",
    proximal_mu: MuOpt = 0.01,
    metadata: MetaOpt = None,
    dp: DpOpt = False,
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

    Example: twinforge federated simulate --data north.csv south.csv --rounds 20 --out model/
    """
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
            **_fed_settings(
                model=model,
                rounds=rounds,
                local_epochs=local_epochs,
                strategy=strategy,
                proximal_mu=proximal_mu,
                dp=dp,
                noise_multiplier=noise_multiplier,
                clipping_norm=clipping_norm,
                stats_noise_multiplier=stats_noise_multiplier,
                delta=delta,
                min_sites=min_sites,
                round_timeout=round_timeout,
                seed=seed,
                overwrite=overwrite,
            ),
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
    local_epochs: LocalEpochsOpt = 1,
    strategy: StrategyOpt = "fedavg",
    proximal_mu: MuOpt = 0.01,
    dp: DpOpt = False,
    noise_multiplier: NoiseOpt = 1.0,
    clipping_norm: ClipOpt = 1.0,
    stats_noise_multiplier: StatsNoiseOpt = 2.0,
    delta: DeltaOpt = 1e-5,
    min_sites: Annotated[int, typer.Option("--min-sites", help="Sites needed to start and per round.")] = 2,
    wait_sites: Annotated[
        float, typer.Option("--wait-sites", help="Seconds to wait for --min-sites sites to connect.")
    ] = 600.0,
    round_timeout: TimeoutOpt = 600.0,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run the federation's server (a Flower SuperLink) and train across the sites that join; save the model.

    Sites join with `twinforge federated client --data local.csv --server THIS_HOST:PORT`. Restarted with the
    same options after a crash, the server resumes from its last finished round.

    Example: twinforge federated server --metadata schema.json --out model/ --rounds 20 --min-sites 3
    """
    import json

    from twinforge.federated import FederatedSettings
    from twinforge.federated._deploy import serve

    twinforge.io.check_output(out, overwrite=overwrite, inputs=[metadata])
    meta = twinforge.Metadata.from_json(metadata)
    settings = FederatedSettings(
        out=str(out),
        metadata=json.loads(json.dumps(meta.to_dict())),
        model=model,
        rounds=rounds,
        local_epochs=local_epochs,
        strategy=strategy,
        proximal_mu=proximal_mu,
        dp=dp,
        noise_multiplier=noise_multiplier,
        clipping_norm=clipping_norm,
        stats_noise_multiplier=stats_noise_multiplier,
        delta=delta,
        min_sites=min_sites,
        wait_sites_seconds=wait_sites,
        round_timeout=round_timeout,
        seed=seed,
        overwrite=overwrite,
    )
    err_console.print(f"SuperLink on {host}:{port}; waiting for {min_sites} site(s)")
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

    Runs until stopped (Ctrl-C). Only the model's weights and aggregate counts are sent, never a row.

    Example: twinforge federated client --data ward_a.csv --server 10.0.0.5:9092
    """
    import signal

    from twinforge.federated._deploy import _stop, join

    proc = join(data, server, name=name, port=port)
    err_console.print(f"site {name or Path(data).stem}: SuperNode started for {server}; Ctrl-C to stop")

    def stop(signum: int, frame: Any) -> None:
        _stop(proc)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)  # the SuperNode and its ClientApps stop with this command
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code:
        raise typer.Exit(code)


def _score(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:  # pragma: no cover - entry point
    app()
