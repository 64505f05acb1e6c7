"""Making one delivery: a webhook POST, an e-mail, a build forced on Buildbot, or a message
published on the bus (automation.bus).

Each delivery is made by a `Sender`, which `Senders` chooses from the delivery's kind and sink
(the worker's only way out of the process; tests pass a double of their own). A sender raises
DeliveryError (with a one-line reason kept on the delivery) when the receiver did not take it;
the worker then tries again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import httpx

from execdb import __version__
from execdb.automation.bus import Publisher, PublishError
from execdb.automation.models import EMAIL_SINK, Kind, webhook_name
from execdb.automation.settings import (
    BusSettings,
    DispatchSettings,
    NotifySettings,
    SmtpSettings,
)

USER_AGENT = f"ExecDB/{__version__}"


class DeliveryError(Exception):
    """The receiver did not take the delivery; the message says why in one line."""


def signature(secret: str, body: bytes) -> str:
    """The X-ExecDB-Signature of a body: `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _body(payload: Mapping[str, Any], delivery_uuid: str) -> bytes:
    return json.dumps({"id": delivery_uuid, **payload}, sort_keys=True).encode()


async def post_webhook(
    client: httpx.AsyncClient, url: str, secret: str, delivery: Mapping[str, Any]
) -> None:
    """POST the delivery's payload as JSON, signed, with its stable id in X-ExecDB-Delivery."""
    delivery_uuid = str(delivery["uuid"])
    body = _body(delivery["payload"], delivery_uuid)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-ExecDB-Delivery": delivery_uuid,
        "X-ExecDB-Event": str(delivery["payload"].get("event", delivery["kind"])),
    }
    if secret:
        headers["X-ExecDB-Signature"] = signature(secret, body)
    try:
        answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"POST {url}: {exc.__class__.__name__}: {exc}") from None
    if not answer.is_success:
        raise DeliveryError(f"POST {url}: HTTP {answer.status_code}: {answer.text[:200]}")


def email_message(delivery: Mapping[str, Any], smtp: SmtpSettings) -> EmailMessage:
    payload = delivery["payload"]
    job = payload["job"]
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(delivery["recipients"])
    message["Subject"] = (
        f"[ExecDB] {job['task']} crashed on {job['item']} "
        f"({job['blame']}: {job['cause'] or 'no cause'})"
    )
    # Stable across attempts: a mail sent twice is recognisably one message.
    message["Message-ID"] = f"<{delivery['uuid']}@execdb>"
    message["Date"] = formatdate(localtime=False)
    message["X-ExecDB-Job"] = job["uuid"]
    retry = payload.get("retry") or {}
    target = ", ".join(filter(None, (job["item_type"], job["arch"])))
    lines = [
        f"The job {job['uuid']} crashed.",
        "",
        f"  Page:     {job['page']}",
        f"  Task:     {job['task']}",
        f"  Item:     {job['item']} ({target})",
        f"  Attempt:  {job['attempt']}",
        f"  Blame:    {job['blame']}",
        f"  Cause:    {job['cause'] or '(none given)'}",
    ]
    if payload.get("cause_description"):
        lines += ["", payload["cause_description"]]
    lines += [
        "",
        "Retry: " + (f"at {retry['at']}" if retry.get("at") else "none"),
        f"  ({retry.get('reason', '')})",
    ]
    if job.get("details"):
        lines += ["", "Details:", "", job["details"]]
    message.set_content("\n".join(lines) + "\n")
    return message


def _send_email(message: EmailMessage, smtp: SmtpSettings) -> None:
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout.total_seconds()) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.username:
                server.login(smtp.username, smtp.password or "")
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"SMTP {smtp.host}:{smtp.port}: {exc.__class__.__name__}: {exc}"
        ) from None


async def send_email(delivery: Mapping[str, Any], smtp: SmtpSettings) -> None:
    await asyncio.to_thread(_send_email, email_message(delivery, smtp), smtp)


class Sender(Protocol):
    """Makes one kind of delivery; raises DeliveryError when the receiver did not take it."""

    async def send(self, delivery: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class EmailSender:
    smtp: SmtpSettings

    async def send(self, delivery: Mapping[str, Any]) -> None:
        await send_email(delivery, self.smtp)


@dataclass(frozen=True, slots=True)
class WebhookSender:
    client: httpx.AsyncClient
    url: str
    secret: str

    async def send(self, delivery: Mapping[str, Any]) -> None:
        await post_webhook(self.client, self.url, self.secret, delivery)


@dataclass(frozen=True, slots=True)
class BuildbotSender:
    client: httpx.AsyncClient
    url: str
    settings: DispatchSettings

    async def send(self, delivery: Mapping[str, Any]) -> None:
        await force_build(self.client, self.url, self.settings, delivery["payload"]["job"])


@dataclass(frozen=True, slots=True)
class MessageSender:
    publisher: Publisher

    async def send(self, delivery: Mapping[str, Any]) -> None:
        try:
            await self.publisher.send(delivery)
        except PublishError as exc:
            raise DeliveryError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Unsendable:
    """A delivery whose sink the settings no longer name: it fails, saying why."""

    reason: str

    async def send(self, delivery: Mapping[str, Any]) -> None:
        raise DeliveryError(self.reason)


class Senders:
    """The one place that turns a delivery's kind and sink into the sender that makes it."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        notify: NotifySettings,
        dispatch: DispatchSettings,
        bus: BusSettings | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.client = client
        self.notify = notify
        self.dispatch = dispatch
        # One publisher for all messages, which keeps each job's in order.
        self._publisher = (
            Publisher(bus.config, timeout) if bus is not None and bus.config is not None else None
        )

    def __call__(self, delivery: Mapping[str, Any]) -> Sender:
        sink: str = delivery["sink"]
        if delivery["kind"] == Kind.DISPATCH:
            return self._dispatcher(sink)
        if delivery["kind"] == Kind.MESSAGE:
            if self._publisher is None:
                return Unsendable("no bus.config in the settings (the fedora-messaging file)")
            return MessageSender(self._publisher)
        if sink == EMAIL_SINK:
            return EmailSender(self.notify.smtp)
        name = webhook_name(sink)
        hook = self.notify.webhooks.get(name) if name is not None else None
        if hook is None:
            return Unsendable(f"no webhook {name or sink!r} in the settings ([notify.webhooks])")
        return WebhookSender(self.client, str(hook.url), hook.secret)

    def _dispatcher(self, sink: str) -> Sender:
        if self.dispatch.url is None:
            return Unsendable("no dispatch.url in the settings")
        url = str(self.dispatch.url).rstrip("/")
        if sink == "webhook":
            return WebhookSender(self.client, url, self.dispatch.secret)
        if sink == "buildbot":
            return BuildbotSender(self.client, url, self.dispatch)
        return Unsendable(f"no dispatcher {sink!r} (set dispatch.kind)")


async def force_build(
    client: httpx.AsyncClient, url: str, settings: DispatchSettings, job: Mapping[str, Any]
) -> None:
    """Force a build through Buildbot's JSON-RPC API (POST /api/v2/forceschedulers/NAME)."""
    headers = {"User-Agent": USER_AGENT}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    try:
        builder = await _builder_id(client, url, settings, headers)
        answer = await client.post(
            f"{url}/api/v2/forceschedulers/{settings.scheduler}",
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "method": "force",
                "id": 1,
                "params": {
                    "builderid": builder,
                    "taskname": job["task"],
                    "item": job["item"],
                    "item_type": job["item_type"],
                    "arch": job["arch"] or "",
                    "uuid": job["uuid"],
                },
            },
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"Buildbot at {url}: {exc.__class__.__name__}: {exc}") from None
    try:
        result = answer.json()
    except ValueError:
        result = None
    if not answer.is_success or not isinstance(result, dict) or "result" not in result:
        problem = result.get("error") if isinstance(result, dict) else answer.text[:200]
        raise DeliveryError(
            f"Buildbot refused to force {settings.scheduler!r}: HTTP {answer.status_code}: "
            f"{problem}"
        )


async def _builder_id(
    client: httpx.AsyncClient, url: str, settings: DispatchSettings, headers: dict[str, str]
) -> int:
    name = settings.builder
    if name is None:
        answer = await client.get(
            f"{url}/api/v2/forceschedulers/{settings.scheduler}", headers=headers
        )
        schedulers = answer.json().get("forceschedulers") if answer.is_success else None
        if not schedulers:
            raise DeliveryError(f"Buildbot has no force scheduler {settings.scheduler!r}")
        name = schedulers[0]["builder_names"][0]
    answer = await client.get(f"{url}/api/v2/builders", params={"name": name}, headers=headers)
    builders = answer.json().get("builders") if answer.is_success else None
    if not builders:
        raise DeliveryError(f"Buildbot has no builder {name!r}")
    return int(builders[0]["builderid"])
