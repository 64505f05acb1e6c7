"""Settings: one typed class, read from `EXECDB_*` environment variables and a TOML file.

Nothing here does I/O at import. Tests build `Settings(...)` directly; only the command line
reads the environment and the file, through `load_settings`.
Precedence, highest first: explicit arguments, environment variables, the TOML file, defaults.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from execdb.automation.settings import (
    BusSettings,
    DeliverySettings,
    DispatchSettings,
    Duration,
    NotifySettings,
    RetrySettings,
    WatchdogSettings,
)


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/execdb`, i.e. ~/.local/share/execdb on most systems."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "execdb"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECDB_", extra="forbid", frozen=True)

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded SQLite database lives when no database_url is given.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; postgresql://user@host/db for production. "
        "Default: SQLite in data_dir.",
    )
    base_url: str | None = Field(
        default=None,
        description="Public URL of the service (https://execdb.example.org), used in links. "
        "Default: taken from each request (honouring X-Forwarded-* from trusted proxies).",
    )
    resultsdb_url: str | None = Field(
        default=None,
        description="ResultsDB's root URL (https://resultsdb.example.org/resultsdb); with it, "
        "a job's page links to the job's result group there (the group UUID is the job UUID).",
        pattern=r"^https?://",
    )
    causes_file: Path | None = Field(
        default=None, description="A TOML file of causes merged over the shipped catalogue."
    )
    rules_file: Path | None = Field(
        default=None,
        description="A TOML file of log-classification rules merged over the shipped ones.",
    )
    require_token_for_reads: bool = False
    metrics_require_token: bool | None = Field(
        default=None,
        description="Whether GET /metrics needs a token (any scope). Default: as other "
        "reads (require_token_for_reads).",
    )
    metrics_cache_seconds: Annotated[float, Field(ge=0, le=600)] = Field(
        default=30.0,
        description="How long a process keeps its count of FINISHED, CRASHED and CANCELLED "
        "jobs for /metrics (a count over nearly every job); SCHEDULED and RUNNING are counted "
        "on every scrape.",
    )
    session_lifetime: Duration = Field(
        default=timedelta(hours=12),
        description="How long a sign-in to the pages lasts, from signing in (a fixed time: "
        "using the pages does not extend it); signing out or revoking the token ends it "
        "sooner.",
    )
    rules_refresh_seconds: Annotated[float, Field(ge=0, le=300)] = Field(
        default=2.0,
        description="How often a process looks whether the rules saved in the database "
        "changed (one indexed read); a saved rule is in use everywhere within this time.",
    )
    rules_stale_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=90,
        description="A rule that has not matched a stored crash for this many days is "
        "listed as stale (/rules, GET /api/v1/rules).",
    )
    token_cache_seconds: Annotated[float, Field(ge=0, le=300)] = Field(
        default=10.0,
        description="How long a process trusts a token it has recognised; a token revoked "
        "elsewhere stops working within this time (0: look it up on every request).",
    )
    details_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=65536,
        description="Longer details of a report are kept head and tail around a marker.",
    )
    executor_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=16384,
        description="The largest `executor` object a report may carry, as compact JSON "
        "(UTF-8); a larger one is refused with 413.",
    )
    trigger_data_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=65536,
        description="The largest `trigger_data` object a new job may carry, as compact JSON "
        "(UTF-8); a larger one is refused with 413.",
    )
    history_payload_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=4096,
        description="What the history keeps of a refused or repeated report: larger ones "
        "are shortened (details head and tail, large values replaced by a note).",
    )
    page_max_bytes: Annotated[int, Field(ge=65536)] = Field(
        default=1024 * 1024,
        description="A page of jobs or of a job's history ends early, with a `next` link, "
        "once its trigger_data, executor, details and payloads hold about this much.",
    )
    log_max_bytes: Annotated[int, Field(ge=4096, le=768 * 1024)] = Field(
        default=256 * 1024,
        description="How much of a report's log ExecDB keeps and classifies: its last part, "
        "cut on a line boundary after a marker line saying how much was left out.",
    )
    finished_log_sample: Annotated[int, Field(ge=0)] = Field(
        default=10,
        description="Keep the log of 1 in this many FINISHED reports (chosen by the job's "
        "uuid), so that rules can be checked against runs that passed; 0 keeps none.",
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=1024 * 1024, description="Larger request bodies are refused with 413."
    )
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 8

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 5003
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "info"
    access_log: bool = True
    group_commit: bool = Field(
        default=True,
        description="SQLite: the API's writes of one turn of the event loop share a commit "
        "(execdb.db). Off only to measure what it is worth (docs/benchmarks.md).",
    )
    prepared_statements: bool = Field(
        default=True,
        description="The hot statements run straight on the DB-API cursor (execdb.prepared), "
        "and on PostgreSQL in pipelined transactions through libpq (execdb.pipelined). "
        "Off only to measure what it is worth (docs/benchmarks.md).",
    )
    telemetry: bool = Field(
        default=False,
        description="FastAPI's OpenTelemetry traces, metrics and logs (needs a configured "
        "OpenTelemetry SDK); off by default, since checking for it costs on every request.",
    )

    retry: RetrySettings = RetrySettings()
    watchdog: WatchdogSettings = WatchdogSettings()
    dispatch: DispatchSettings = DispatchSettings()
    notify: NotifySettings = NotifySettings()
    delivery: DeliverySettings = DeliverySettings()
    bus: BusSettings = BusSettings()
    worker_in_serve: bool | None = Field(
        default=None,
        description="Whether `execdb serve` also runs the background work (retries, watchdog, "
        "dispatch, notifications). Default: yes on the embedded SQLite database; on "
        "PostgreSQL run `execdb worker` instead (or as well: workers share the work safely).",
    )
    worker_interval: Duration = Field(
        default=timedelta(seconds=5),
        description="How often the background work looks for something to do.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, url: str | None) -> str | None:
        # `postgresql://` is what people paste; psycopg 3 is the driver we ship.
        if url and url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'execdb.sqlite'}"

    @property
    def runs_worker_in_serve(self) -> bool:
        return self.is_sqlite if self.worker_in_serve is None else self.worker_in_serve

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class SettingsError(ValueError):
    """Settings that cannot be used; the message is one line naming each bad setting."""


def describe(error: ValidationError) -> str:
    problems = []
    for e in error.errors():
        name = (
            "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in e["loc"]
            ).lstrip(".")
            or "settings"
        )
        msg = "unknown setting" if e["type"] == "extra_forbidden" else e["msg"]
        given = e.get("input")
        if e["type"] != "extra_forbidden" and isinstance(given, str | int | float | bool):
            msg = f"{msg} (got {given!r})"
        problems.append(f"{name}: {msg}")
    return "; ".join(problems)


def load_settings(config_file: Path | None = None) -> Settings:
    """Settings from the environment and the TOML file (`config_file` or `$EXECDB_CONFIG`).

    Raises SettingsError naming the file or the settings that are wrong.
    """
    path = config_file or (Path(p) if (p := os.environ.get("EXECDB_CONFIG")) else None)
    if path is not None and not path.is_file():
        raise SettingsError(f"settings file {path} does not exist")

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    origin = f"{path} or EXECDB_* variables" if path else "EXECDB_* variables"
    try:
        return Settings.model_validate(_Loaded().model_dump())
    except ValidationError as exc:
        raise SettingsError(f"{origin}: {describe(exc)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
