"""What every route and page gets from the application: its services and its public URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from execdb.services import Services


async def services_of(request: Request) -> Services:
    # async on purpose: FastAPI runs plain-function dependencies on a thread pool.
    return get_services(request)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services_of)]


def base_url(request: Request) -> str:
    """The public root URL: the `base_url` setting, else what the request was sent to."""
    configured = get_services(request).settings.base_url
    if configured:
        return configured.rstrip("/")
    scope = request.scope
    host = request.headers.get("host") or "{}:{}".format(*scope["server"])
    return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"
