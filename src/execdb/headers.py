"""What every answer gets on its way out: the security headers, and HEAD answered as GET.

One pure ASGI layer around the whole application (outside Starlette's error middleware, so a
500 carries the headers too). It adds a constant list of headers to each response start and
does nothing else per request: Starlette's BaseHTTPMiddleware would cost the hot routes a task
and a stream per request.

The Content-Security-Policy allows only the service's own scripts, styles, images and
fetches: the pages and the API docs (/docs) load nothing from elsewhere and run no inline
script or style, and no other site may frame them. `data:` images are for the icons inside
Swagger UI's stylesheet.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Links to ResultsDB and executor logs leave the site: they do not need the job's URL.
    (b"referrer-policy", b"same-origin"),
)


class ResponseHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer, and answers HEAD as GET without the body.

    FastAPI's routes answer only the methods they name, so without this every page and API
    read would refuse HEAD with 405. The route sees a GET; the answer keeps the GET's headers
    (Content-Length included) and loses its body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_with_headers)
