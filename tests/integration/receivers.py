"""A real HTTP server that takes webhook posts, for tests of the notifier's webhook channel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.embedded import free_port


@dataclass(frozen=True)
class Post:
    """One request the receiver got: its path, headers and body as sent."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def notification_id(self) -> str | None:
        return self.headers.get("X-Caseledger-Notification")


@dataclass
class WebhookReceiver:
    """What a running receiver on 127.0.0.1 got; it answers every post 204."""

    port: int
    posts: list[Post] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A receiver listening for the duration of the block."""
    receiver = WebhookReceiver(free_port())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                receiver.posts.append(Post(self.path, dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
