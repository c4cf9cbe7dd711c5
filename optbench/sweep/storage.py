"""Where sweeps live: an Optuna RDB storage by URL (SQLite file by default; PostgreSQL or MySQL for many machines).

    sqlite:///sweeps/optuna.db                      one machine, several workers (the default)
    postgresql://user:pass@host:5432/db             psycopg 3 (pip install 'optbench[postgres]') or psycopg2
    mysql+pymysql://user:pass@host/db               (pip install 'optbench[mysql]')

Every worker's storage runs Optuna's heartbeat: a trial whose worker stops beating for `grace_period` seconds is
marked failed by the next worker that asks for a trial, and RetryHeartbeatStaleTrialCallback enqueues it again.
SQLite keeps the heartbeat's time in whole seconds, so there a trial goes stale up to a second after the grace period.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

from optbench.errors import OptbenchError

ENV_STORAGE = "OPTBENCH_SWEEP_STORAGE"
DEFAULT_STORAGE = "sqlite:///sweeps/optuna.db"
HEARTBEAT_INTERVAL = 20  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # a trial silent this long is stale (failed, then retried)
MAX_RETRY = 2  # retries of one stale trial


def resolve_url(url: str | None) -> str:
    """The explicit URL, else $OPTBENCH_SWEEP_STORAGE, else sqlite:///sweeps/optuna.db."""
    return url or os.environ.get(ENV_STORAGE) or DEFAULT_STORAGE


def redact(url: str) -> str:
    """The URL with any password hidden (for messages, reports and recipes)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is reported as given
        return url


def _with_driver(url: str) -> str:
    """postgresql:// and mysql:// with the driver that is installed (SQLAlchemy defaults to psycopg2/mysqlclient)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001
        raise OptbenchError(f"--storage {url!r}: not a database URL (e.g. sqlite:///sweeps/optuna.db, "
                            f"postgresql://user@host/db)") from None
    backend, driver = u.get_backend_name(), u.get_driver_name()
    if backend == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return url
    wanted = {"postgresql": [("psycopg2", "psycopg2"), ("psycopg", "psycopg")],
              "mysql": [("mysqldb", "MySQLdb"), ("pymysql", "pymysql")]}
    if backend not in wanted:
        raise OptbenchError(f"--storage {redact(url)}: unsupported database {backend!r}; use sqlite, postgresql or mysql")
    drivers = wanted[backend]
    explicit = "+" in u.drivername
    if explicit:
        module = dict(drivers).get(driver, driver)
        if importlib.util.find_spec(module) is None:
            raise OptbenchError(f"--storage {redact(url)}: the database driver {module!r} is not installed "
                                f"(pip install 'optbench[{'postgres' if backend == 'postgresql' else 'mysql'}]')")
        return url
    for drv, module in drivers:
        if importlib.util.find_spec(module) is not None:
            return u.set(drivername=f"{backend}+{drv}").render_as_string(hide_password=False)
    raise OptbenchError(f"--storage {redact(url)}: no {backend} driver is installed "
                        f"(pip install 'optbench[{'postgres' if backend == 'postgresql' else 'mysql'}]')")


def open_storage(url: str | None = None, *, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
                 grace_period: int | None = GRACE_PERIOD, max_retry: int = MAX_RETRY):
    """An optuna RDBStorage (heartbeat on unless heartbeat_interval is None); OptbenchError if unreachable."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = _with_driver(resolve_url(url))
    backend = url.split(":", 1)[0].split("+", 1)[0]
    engine_kwargs: dict = {"pool_pre_ping": True}
    if backend == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}  # several workers share one file: wait for its lock
    elif backend == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    elif backend == "mysql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    heartbeat = {}
    if heartbeat_interval:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            heartbeat = dict(heartbeat_interval=heartbeat_interval, grace_period=grace_period or 3 * heartbeat_interval,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry))
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ValueError) as e:
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OptbenchError(f"--storage {redact(url)}: cannot open the sweep database ({first})") from None
