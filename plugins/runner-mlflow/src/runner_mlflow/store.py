"""Which tracking store a URI names, what it needs installed, and the default store.

Imports neither mlflow nor torch: the checks run before MLflow is imported, so a missing
database driver is one line naming the pip extra instead of MLflow's traceback.

The default store is MLflow's own default, ``sqlite:///mlflow.db`` in the directory
``runner run`` starts in (beside ``runs/``): every run of a project logs to the same
store, so the MLflow UI compares them, and ``mlflow ui`` started in that directory reads
it without options or environment variables. Artifacts go to ``./mlruns`` there, also
MLflow's default.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

#: The default store's file, in the working directory (MLflow's own default name).
DEFAULT_DB = "mlflow.db"
#: SQL stores need these (dependencies of runner-mlflow; mlflow-skinny leaves them out).
SQL_ENGINES = ("sqlite", "postgresql", "mysql", "mssql")
SQL_MODULES = {"sqlalchemy": "SQLAlchemy", "alembic": "Alembic"}
#: (engine, driver named in the URI) -> (driver module, the extra of runner-mlflow installing it).
DRIVERS: dict[tuple[str, str], tuple[str, str]] = {
    ("postgresql", ""): ("psycopg2", "postgres"),
    ("postgresql", "psycopg2"): ("psycopg2", "postgres"),
    ("mysql", "pymysql"): ("pymysql", "mysql"),
}
_SCHEME = re.compile(r"^([a-z][a-z0-9.-]*)(?:\+([a-z0-9_]+))?://", re.I)
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def default_tracking_uri(directory: Path | None = None) -> str:
    """``sqlite:///<directory>/mlflow.db`` (absolute), ``directory`` being the working directory."""
    return f"sqlite:///{(directory or Path.cwd()).resolve() / DEFAULT_DB}"


def engine_of(uri: str) -> tuple[str, str]:
    """``("postgresql", "psycopg2")`` for ``postgresql+psycopg2://...``; ``("", "")`` for a path."""
    match = _SCHEME.match(uri)
    return (match.group(1).lower(), (match.group(2) or "").lower()) if match else ("", "")


def is_file_store(uri: str) -> bool:
    """A directory of files (MLflow's file store): ``file:`` URIs and plain paths."""
    return uri.startswith("file:") or "://" not in uri


def shown(uri: str) -> str:
    """``uri`` fit for an error message: no password."""
    return _PASSWORD.sub(r"\1***@", uri)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_dependency(uri: str) -> str | None:
    """What ``uri`` needs that is not installed, as the line to print, or None."""
    engine, driver = engine_of(uri)
    if engine not in SQL_ENGINES:
        return None
    absent = [name for module, name in SQL_MODULES.items() if not _installed(module)]
    if absent:
        return (
            f"tracking_uri {shown(uri)!r} is an SQL store and needs {' and '.join(absent)} (dependencies of "
            f"runner-mlflow that are missing): pip install {' '.join(n.lower() for n in absent)}"
        )
    needed = DRIVERS.get((engine, driver))
    if needed is not None and not _installed(needed[0]):
        module, extra = needed
        return f"tracking_uri {shown(uri)!r} needs the {module} database driver: pip install 'runner-mlflow[{extra}]'"
    return None
