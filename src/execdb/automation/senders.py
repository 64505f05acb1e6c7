"""Making one delivery: a webhook POST, an e-mail, or a build forced on Buildbot.

Each sender raises DeliveryError (with a one-line reason kept on the delivery) when the
receiver did not take it; the worker then tries again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx

from execdb import __version__
from execdb.automation.settings import DispatchSettings, NotifySettings, SmtpSettings

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


async def notify(
    client: httpx.AsyncClient, delivery: Mapping[str, Any], settings: NotifySettings
) -> None:
    sink: str = delivery["sink"]
    if sink == "email":
        await send_email(delivery, settings.smtp)
        return
    name = sink.removeprefix("webhook:")
    hook = settings.webhooks.get(name)
    if hook is None:
        raise DeliveryError(f"no webhook {name!r} in the settings ([notify.webhooks])")
    await post_webhook(client, str(hook.url), hook.secret, delivery)


async def dispatch(
    client: httpx.AsyncClient, delivery: Mapping[str, Any], settings: DispatchSettings
) -> None:
    """Start a rescheduled job with the dispatcher the delivery was made for."""
    assert settings.url is not None
    url = str(settings.url).rstrip("/")
    if delivery["sink"] == "webhook":
        await post_webhook(client, url, settings.secret, delivery)
    elif delivery["sink"] == "buildbot":
        await force_build(client, url, settings, delivery["payload"]["job"])
    else:
        raise DeliveryError(f"no dispatcher {delivery['sink']!r} (set dispatch.kind)")


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
