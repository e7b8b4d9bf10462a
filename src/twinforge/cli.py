"""The ``twinforge`` command: a thin Typer layer over the public API.

Every error a user can cause is printed as one message on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

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


@app.command()
@_user_errors
def fit(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to save the fitted model in.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name; see `twinforge models`.")] = "copula",
    seed: SeedOpt = None,
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Metadata JSON (from `twinforge metadata`); detected if omitted.")
    ] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit a model on DATA and save it to --out.

    Example: twinforge fit customers.csv --out model/ --seed 0
    """
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[data, metadata])
    synth = twinforge.create(model, seed=seed)
    df = _read(data, table, query)
    with console.status(f"fitting {model} on {len(df):,} rows x {df.shape[1]} columns"):
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
    seed: SeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Generate --rows synthetic rows from a saved model into --out, streaming in chunks.

    Example: twinforge sample model/ --rows 1000000 --out synthetic.parquet
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    _positive_rows(rows)
    twinforge.io.table_format(out)
    twinforge.io.check_output(out, overwrite=overwrite, inputs=[model_dir, model_dir / "model.json"])
    synth = twinforge.load(model_dir)
    chunks = synth.sample_chunks(rows, seed=seed)
    columns = (TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("rows", total=rows)
        twinforge.io.write_chunks(chunks, out, overwrite=overwrite, on_chunk=lambda n: progress.advance(task, n))
    console.print(f"wrote {rows:,} rows to {out}")


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
    model: Annotated[str, typer.Option("--model", "-m", help="Model to demonstrate.")] = "copula",
    rows: Annotated[
        int | None, typer.Option("--rows", "-n", help="Rows to generate (default: as many as real).")
    ] = None,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also save the synthetic table here.")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit a model on the embedded churn data, sample, and compare real with synthetic side by side."""
    from twinforge._demo import compare

    if rows is not None:
        _positive_rows(rows)
    if out is not None:
        twinforge.io.table_format(out)
        twinforge.io.check_output(out, overwrite=overwrite)
    real = twinforge.load_demo()
    synth = twinforge.create(model, seed=seed)
    with console.status(f"fitting {model} on the demo data ({len(real):,} rows x {real.shape[1]} columns)"):
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


def _score(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:  # pragma: no cover - entry point
    app()
