"""Settings of what ExecDB does by itself: retry rules, the watchdog, dispatch, notifications,
messages on the bus.

They are sections of the settings file (see docs/policies.md); `config.Settings` holds them.
Durations are seconds or a number with a unit: "90s", "15m", "6h", "2d".
"""

from __future__ import annotations

import fnmatch
import re
from datetime import timedelta
from typing import Annotated, Literal, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    HttpUrl,
    PlainSerializer,
    model_validator,
)

from execdb.causes.catalogue import in_family
from execdb.vocabulary import Blame

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def _duration(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '15m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative (got {value})")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration: write seconds, or '90s', '15m', '6h', '2d'"
            )
        return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(lambda d: d.total_seconds(), return_type=float),
]


def _upper_list(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [v.upper() if isinstance(v, str) else v for v in value]
    return value


def _list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Blames = Annotated[list[Blame], BeforeValidator(_upper_list)]
Patterns = Annotated[list[str], BeforeValidator(_list)]


class Match(BaseModel):
    """What a rule applies to; every field given must match, a missing one matches all.

    `cause` entries are codes or families (`koji` matches `koji.timeout`); `task` entries are
    shell-style patterns (`rpm*`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="Shown in messages about this rule.")
    blame: Blames | None = None
    cause: Patterns | None = None
    task: Patterns | None = None

    def matches(self, *, blame: Blame | None, cause: str | None, task: str) -> bool:
        if self.blame is not None and blame not in self.blame:
            return False
        if self.cause is not None and not (
            cause is not None and any(in_family(cause, c) for c in self.cause)
        ):
            return False
        return self.task is None or any(fnmatch.fnmatchcase(task, p) for p in self.task)


class Backoff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_delay: Duration = timedelta(minutes=5)
    factor: Annotated[float, Field(ge=1, le=10)] = 2.0
    max_delay: Duration = timedelta(hours=6)

    def delay(self, attempt: int) -> timedelta:
        """The wait before the retry of attempt number `attempt` (1 for a job's first run)."""
        seconds = self.initial_delay.total_seconds() * self.factor ** min(attempt - 1, 64)
        return timedelta(seconds=min(seconds, self.max_delay.total_seconds()))

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.initial_delay <= timedelta(0):
            raise ValueError("initial_delay must be more than zero")
        if self.max_delay < self.initial_delay:
            raise ValueError("max_delay must not be less than initial_delay")
        return self


class RetryRule(Match, Backoff):
    """One retry rule: `action = "retry"` up to `max_attempts` attempts in all, or "never"."""

    retryable: bool | None = Field(
        default=None, description="Match only causes the catalogue marks (not) retryable."
    )
    action: Literal["retry", "never"]
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3


DEFAULT_RETRY_RULES = (
    RetryRule(
        name="third-party glitches",
        blame=[Blame.THIRD_PARTY],
        retryable=True,
        action="retry",
        max_attempts=3,
    ),
)


class RetrySettings(BaseModel):
    """Ordered rules, first match wins; with no match, the catalogue's `retryable` flag decides
    and `default` gives the limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[RetryRule, ...] = DEFAULT_RETRY_RULES
    default: Backoff = Backoff()
    default_max_attempts: Annotated[int, Field(ge=1, le=100)] = 3


class TaskTimeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    running: Duration | None = None
    scheduled: Duration | None = None


class WatchdogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    running: Duration = Field(
        default=timedelta(hours=6), description="A job RUNNING longer than this is crashed."
    )
    scheduled: Duration = Field(
        default=timedelta(hours=24), description="A job SCHEDULED longer than this is crashed."
    )
    heartbeat: Duration = Field(
        default=timedelta(minutes=10),
        description="A RUNNING job that has sent heartbeats is crashed when its last one is "
        "older than this.",
    )
    tasks: dict[str, TaskTimeouts] = Field(
        default_factory=dict,
        description="Per-task limits by task name pattern; the first matching pattern wins.",
    )

    def limits(self, task: str) -> tuple[timedelta, timedelta]:
        """(running, scheduled) limits of a task."""
        for pattern, limits in self.tasks.items():
            if fnmatch.fnmatchcase(task, pattern):
                return limits.running or self.running, limits.scheduled or self.scheduled
        return self.running, self.scheduled

    @property
    def shortest(self) -> tuple[timedelta, timedelta]:
        """The shortest (running, scheduled) limits of any task: no job is due before them."""
        running = [self.running, *(t.running for t in self.tasks.values() if t.running)]
        scheduled = [self.scheduled, *(t.scheduled for t in self.tasks.values() if t.scheduled)]
        return min(running), min(scheduled)


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl
    secret: str = Field(
        default="", description="Key of the HMAC-SHA256 signature in X-ExecDB-Signature."
    )


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "execdb@localhost"
    timeout: Duration = timedelta(seconds=30)


def email_address(text: str) -> str:
    """`text` as an address to send mail to, normalised; ValueError saying why it is not one.

    The syntax only (no DNS look-up), by email-validator: one address that fits an SMTP
    envelope and a To header, so that no address can break the message it is put in. The part
    before the @ must be ASCII (the mail server need not offer SMTPUTF8); an internationalised
    domain is given in its ASCII (IDNA) form.
    """
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        shown = text if len(text) <= 100 else text[:100] + "..."
        raise ValueError(f"{shown!r} is not an e-mail address: {exc}") from None
    return checked.ascii_email or checked.normalized


_WEBHOOK = re.compile(r"webhook:[\w.-]+")


def _recipient(value: str) -> str:
    if value in ("maintainers", "admins") or _WEBHOOK.fullmatch(value):
        return value
    if "@" not in value:
        raise ValueError(
            f"{value!r} is not a recipient: write an e-mail address, 'webhook:NAME', "
            "'maintainers' or 'admins'"
        )
    return email_address(value)


def _recipients(value: object) -> object:
    value = _list(value)
    if isinstance(value, list):
        return [_recipient(v) if isinstance(v, str) else v for v in value]
    return value


Recipients = Annotated[list[str], BeforeValidator(_recipients)]


class Route(Match):
    """Who hears of a crash. `when = "final"` waits until no retry is pending."""

    to: Recipients
    when: Literal["always", "final"] = "always"


DEFAULT_ROUTES = (
    Route(name="task bugs", blame=[Blame.TASK], to=["maintainers"]),
    Route(name="our bugs", blame=[Blame.TASKOTRON, Blame.UNKNOWN], to=["admins"]),
    Route(name="third parties", blame=[Blame.THIRD_PARTY], to=["admins"], when="final"),
)


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    admins: Recipients = Field(default_factory=list)
    contacts: dict[str, Recipients] = Field(
        default_factory=dict,
        description="Task name pattern -> the task's maintainers. A trigger may also send "
        "them as trigger_data.contacts.",
    )
    max_contacts: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=20,
        description="How many entries of a job's trigger_data.contacts are looked at; any "
        "after them are dropped, as are those that are not e-mail addresses.",
    )
    routes: tuple[Route, ...] = DEFAULT_ROUTES
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    smtp: SmtpSettings = SmtpSettings()

    @model_validator(mode="after")
    def _webhooks_exist(self) -> Self:
        named = [*self.admins, *(r for rs in self.contacts.values() for r in rs)]
        named += [r for route in self.routes for r in route.to]
        for recipient in named:
            if recipient.startswith("webhook:") and recipient[8:] not in self.webhooks:
                raise ValueError(f"{recipient!r} names no webhook in [notify.webhooks]")
        return self

    def maintainers(self, task: str) -> list[str]:
        return [
            r
            for pattern, recipients in self.contacts.items()
            if fnmatch.fnmatchcase(task, pattern)
            for r in recipients
        ]


class DispatchSettings(BaseModel):
    """How a rescheduled job is started: `none` (someone else polls), `webhook` or `buildbot`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["none", "webhook", "buildbot"] = "none"
    url: HttpUrl | None = Field(
        default=None, description="The webhook's URL, or Buildbot's (http://buildbot:8010)."
    )
    secret: str = Field(default="", description="webhook: key of the HMAC-SHA256 signature.")
    scheduler: str = Field(default="force", description="buildbot: the force scheduler's name.")
    builder: str | None = Field(
        default=None, description="buildbot: the builder's name; default: the scheduler's first."
    )
    token: str | None = Field(
        default=None, description="buildbot: sent as 'Authorization: Bearer' if set."
    )

    @model_validator(mode="after")
    def _url_when_needed(self) -> Self:
        if self.kind != "none" and self.url is None:
            raise ValueError(f"url: the {self.kind} dispatcher needs a url")
        return self


class DeliverySettings(BaseModel):
    """Retries of dispatches and notifications that failed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backoff: Backoff = Backoff(
        initial_delay=timedelta(seconds=10), factor=2, max_delay=timedelta(hours=1)
    )
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 30
    lease: Duration = Field(
        default=timedelta(minutes=2),
        description="How long a worker owns a delivery it is making; after that, another "
        "worker may make it again (so a worker killed mid-delivery loses nothing).",
    )
    timeout: Duration = timedelta(seconds=20)

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> Self:
        if self.lease <= self.timeout:
            raise ValueError("lease must be longer than timeout")
        return self


class BusSettings(BaseModel):
    """Publishing job changes on the Fedora message bus (docs/messages.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: FilePath | None = Field(
        default=None,
        description="fedora-messaging's TOML file (amqp_url, [tls], publish_exchange, "
        "topic_prefix, [client_properties]). Unset: ExecDB publishes nothing and writes "
        "nothing for the bus.",
    )

    @property
    def enabled(self) -> bool:
        return self.config is not None

    @model_validator(mode="after")
    def _valid(self) -> Self:
        # fedora-messaging's own checks (unknown keys, queues, bindings ...), on a copy of its
        # configuration: the process's own is loaded when the worker starts publishing.
        # Imported only then: it brings jsonschema, which a deployment without a bus need not
        # load.
        if self.config is not None:
            from fedora_messaging import config as fm_config
            from fedora_messaging import exceptions as fm_exceptions

            try:
                fm_config.LazyConfig().load_config(str(self.config))
            except fm_exceptions.ConfigurationException as exc:
                raise ValueError(f"{self.config}: {exc.message}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{self.config} cannot be read: {exc}") from None
        return self
