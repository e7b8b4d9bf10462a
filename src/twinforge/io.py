"""Reading and writing tables, atomically, and the on-disk format of saved models.

Tables: CSV (also ``.csv.gz``, ``.tsv``), Parquet, and SQL through a SQLAlchemy URL with a table name or a
query (SQLite needs no server). Outputs go to a temporary file beside the target and are renamed into place,
so a crash never leaves half a file; an output that exists is kept unless ``overwrite=True``, and an output
that is one of the inputs is always refused.

Models: a directory holding ``model.json`` (format, versions, parameters, metadata, every learned value that
is not an array) and ``weights.npz`` (the arrays, read with ``allow_pickle=False``), whose SHA-256 is recorded
in ``model.json`` so corruption is detected. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as _io
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twinforge._version import __version__
from twinforge.errors import DataError, ModelFileError, OutputError, ParameterError

__all__ = ["read_table", "write_table", "write_chunks", "table_format"]

MODEL_FORMAT = "twinforge-model"
MODEL_FORMAT_VERSION = 1
_CSV = (".csv", ".csv.gz", ".tsv", ".txt")
_PARQUET = (".parquet", ".pq")


# ------------------------------------------------------------------------------------------- reading
def is_sql_url(source: Any) -> bool:
    return isinstance(source, str) and "://" in source and not source.startswith("file://")


def table_format(path: str | os.PathLike) -> str:
    """'csv' or 'parquet' from the file name; a clear error for anything else."""
    name = str(path).lower()
    if name.endswith(_CSV):
        return "csv"
    if name.endswith(_PARQUET):
        return "parquet"
    suffix = "".join(Path(name).suffixes) or "(none)"
    raise DataError(f"unknown table format {suffix!r} for {str(path)!r}: use .csv, .csv.gz, .tsv or .parquet")


def read_table(
    source: str | os.PathLike | pd.DataFrame,
    *,
    table: str | None = None,
    query: str | None = None,
) -> pd.DataFrame:
    """Read a table from a DataFrame, a CSV/Parquet path, or a SQLAlchemy URL with ``table`` or ``query``.

    Raises :class:`~twinforge.errors.DataError` for a missing, unreadable or empty source.
    """
    if isinstance(source, pd.DataFrame):
        df = source
    elif not isinstance(source, (str, os.PathLike)):
        raise ParameterError(
            f"expected a DataFrame, a file path or a SQL URL, got {type(source).__name__}: "
            "wrap the data in pandas.DataFrame(...)"
        )
    elif is_sql_url(source):
        df = _read_sql(str(source), table, query)
    else:
        if table is not None or query is not None:
            raise ParameterError("table/query are only for SQL sources (a URL such as sqlite:///data.db)")
        df = _read_file(Path(source))
    if df.shape[1] == 0:
        raise DataError(f"{_describe(source)} has no columns")
    _check_unique_columns(list(df.columns), _describe(source))
    if len(df) == 0:
        raise DataError(f"{_describe(source)} has no rows")
    return df


def _check_unique_columns(names: list[Any], what: str) -> None:
    index = pd.Index(names)
    repeated = sorted({str(c) for c in index[index.duplicated()] if c != ""})
    if repeated:
        raise DataError(
            f"{what} has more than one column named {', '.join(map(repr, repeated))}: give each column its own name"
        )


def _describe(source: Any) -> str:
    return "the DataFrame" if isinstance(source, pd.DataFrame) else repr(str(source))


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"file not found: {str(path)!r}")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a directory, not a table file")
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        sep = "\t" if str(path).lower().endswith(".tsv") else ","
        df = pd.read_csv(path, sep=sep, low_memory=False)
        # pandas renames a repeated header ("a", "a" -> "a", "a.1"): say so rather than invent a column name
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0]
        _check_unique_columns(list(header), repr(str(path)))
        return df
    except pd.errors.EmptyDataError:
        raise DataError(f"{str(path)!r} is empty") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {str(path)!r} as {fmt}: {first}") from None
    except Exception as exc:  # pyarrow raises its own exception types for corrupt files
        raise DataError(f"cannot read {str(path)!r} as {fmt}: {exc}") from None


def _read_sql(url: str, table: str | None, query: str | None) -> pd.DataFrame:
    if (table is None) == (query is None):
        raise ParameterError(f"reading from {url!r} needs exactly one of --table NAME or --query SQL")
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except Exception as exc:
        raise DataError(f"cannot open database URL {url!r}: {exc}") from None
    try:
        with engine.connect() as conn:
            if table is not None:
                return pd.read_sql_table(table, conn)
            return pd.read_sql_query(sa.text(query), conn)
    except ValueError as exc:
        raise DataError(f"cannot read table {table!r} from {url!r}: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        raise DataError(f"cannot read from {url!r}: {first}") from None
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------- writing
def check_output(path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[Any] = ()) -> Path:
    """Refuse an output that is an input, or that exists without ``overwrite``."""
    out = Path(path)
    for source in inputs:
        if source is None or isinstance(source, pd.DataFrame) or is_sql_url(source):
            continue
        src = Path(source)
        same = out.resolve() == src.resolve() or (src.exists() and out.exists() and os.path.samefile(src, out))
        if same:
            raise OutputError(f"output {str(out)!r} is also an input: choose another output path")
        if out.is_dir() and src.resolve().is_relative_to(out.resolve()):
            raise OutputError(f"output folder {str(out)!r} contains the input {str(src)!r}: choose another output")
    if out.exists() and not overwrite:
        raise OutputError(f"{str(out)!r} already exists: choose another path or pass overwrite (--overwrite)")
    if not out.parent.exists():
        raise OutputError(f"folder {str(out.parent)!r} does not exist: create it first")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# tempfile makes private files (0600) and folders (0700); outputs get the usual permissions instead
_UMASK = _umask()


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block finishes."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror}; choose a folder you can write to") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with _atomic_path(Path(path)) as tmp:
        tmp.write_text(text)


def write_table(
    df: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[Any] = ()
) -> Path:
    """Write ``df`` to CSV or Parquet (by extension), atomically."""
    return write_chunks([df], path, overwrite=overwrite, inputs=inputs)


def write_chunks(
    chunks: Iterable[pd.DataFrame],
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs: Iterable[Any] = (),
    on_chunk: Callable[[int], None] | None = None,
) -> Path:
    """Stream ``chunks`` into one CSV or Parquet file, so memory holds one chunk at a time.

    ``on_chunk(rows)`` is called after each chunk (for a progress bar).
    """
    out = check_output(path, overwrite=overwrite, inputs=inputs)
    fmt = table_format(out)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        raise ParameterError(f"nothing to write to {str(out)!r}: no table was given")
    chunks = itertools.chain([first], chunks)
    with _atomic_path(out) as tmp:
        if fmt == "parquet":
            _write_parquet(chunks, tmp, on_chunk)
        else:
            sep = "\t" if str(out).lower().endswith(".tsv") else ","
            import gzip

            opener: Any = gzip.open if str(out).lower().endswith(".gz") else open
            with opener(tmp, "wt", newline="") as handle:
                for i, chunk in enumerate(chunks):
                    chunk.to_csv(handle, sep=sep, index=False, header=(i == 0))
                    if on_chunk:
                        on_chunk(len(chunk))
    return out


def _write_parquet(chunks: Iterable[pd.DataFrame], tmp: Path, on_chunk: Callable[[int], None] | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    schema = None
    try:
        for chunk in chunks:
            if schema is None:
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                # a column missing in the first chunk alone is typed null; text is what it holds elsewhere
                fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
                schema = pa.schema(fields, metadata=table.schema.metadata)
                table = table.cast(schema)
                writer = pq.ParquetWriter(tmp, schema)
            else:
                table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
            writer.write_table(table)
            if on_chunk:
                on_chunk(len(chunk))
    finally:
        if writer is not None:
            writer.close()


# ------------------------------------------------------------------------------------------- models on disk
def _split_arrays(obj: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    """Replace every numpy array in ``obj`` by a reference into ``arrays``; return a JSON-able copy."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return {"__list__": _split_arrays(obj.tolist(), arrays, path)}
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, arrays, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _join_arrays(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        if set(obj) == {"__list__"}:
            return np.asarray(_join_arrays(obj["__list__"], arrays), dtype=object)
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj


def save_model_dir(path: str | os.PathLike, document: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``document`` (arrays anywhere inside) as ``model.json`` + ``weights.npz``, atomically."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputError(f"{str(target)!r} already exists: choose another path or pass overwrite (--overwrite)")
    if target.exists() and not (target / "model.json").is_file():
        raise OutputError(f"{str(target)!r} exists and is not a twinforge model: refusing to replace it")
    if not target.parent.exists():
        raise OutputError(f"folder {str(target.parent)!r} does not exist: create it first")
    arrays: dict[str, np.ndarray] = {}
    body = _split_arrays(document, arrays, "")
    buffer = _io.BytesIO()
    np.savez(buffer, **{f"a{i}": a for i, a in enumerate(arrays.values())})
    keys = {name: f"a{i}" for i, name in enumerate(arrays)}
    weights = buffer.getvalue()
    header = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "twinforge_version": __version__,
        "weights": {"file": "weights.npz", "sha256": hashlib.sha256(weights).hexdigest(), "keys": keys},
        **body,
    }
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror}; choose a folder you can write to") from None
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        (tmp / "weights.npz").write_bytes(weights)
        (tmp / "model.json").write_text(json.dumps(header, indent=1) + "\n")
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_model_header(path: str | os.PathLike) -> dict[str, Any]:
    """``model.json`` of a model directory, checked for format and version (weights not read)."""
    root = Path(path)
    if not root.exists():
        raise ModelFileError(f"model directory not found: {str(root)!r}")
    if not root.is_dir():
        raise ModelFileError(
            f"{str(root)!r} is a file, not a twinforge model directory: give the folder that `twinforge fit --out` "
            "(or model.save) wrote"
        )
    doc_path = root / "model.json"
    if not doc_path.is_file():
        raise ModelFileError(f"{str(root)!r} is not a twinforge model directory (no model.json)")
    try:
        doc = json.loads(doc_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{str(doc_path)!r} is corrupted (not valid JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{str(root)!r} is not a twinforge model (model.json has no twinforge format tag)")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{str(root)!r} was saved by twinforge {doc.get('twinforge_version')} in model format {version}; "
            f"this twinforge ({__version__}) reads format {MODEL_FORMAT_VERSION}: upgrade twinforge"
        )
    return doc


def load_model_dir(path: str | os.PathLike) -> dict[str, Any]:
    """The document written by :func:`save_model_dir`, arrays restored, integrity checked."""
    root = Path(path)
    doc = read_model_header(root)
    info = doc.get("weights") or {}
    weights_path = root / str(info.get("file", "weights.npz"))
    if not weights_path.is_file():
        raise ModelFileError(f"{str(root)!r} is incomplete: {weights_path.name} is missing")
    blob = weights_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != info.get("sha256"):
        raise ModelFileError(f"{str(weights_path)!r} is corrupted (checksum mismatch): re-save or re-fit the model")
    try:
        with np.load(_io.BytesIO(blob), allow_pickle=False) as npz:
            stored = {name: npz[key] for name, key in info["keys"].items()}
    except Exception as exc:
        raise ModelFileError(f"{str(weights_path)!r} cannot be read: {exc}") from None
    body = {k: v for k, v in doc.items() if k not in ("weights",)}
    try:
        return _join_arrays(body, stored)
    except KeyError as exc:
        raise ModelFileError(f"{str(root)!r} is corrupted: array {exc} is missing") from None
