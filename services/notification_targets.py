"""What a notification may name, checked when a case-type document is checked: text the
database can store, one plain e-mail address per recipient, an http(s) URL without
credentials (credentials are named by ``secret:``), and, through the
:class:`NotificationPolicy` port, the targets and topics IT allows and the secrets that exist.

The policy itself (the webhook allowlist, the reserved topics, the secrets table) lives in
``infra``; ``services`` only asks it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from domain.values import NO_NUL_MESSAGE

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}")
NOT_AN_ADDRESS = (
    "is not one e-mail address; write a single plain address such as claims@example.com "
    "(no display name, comma, quotes or line break)"
)


class NotificationPolicy(Protocol):
    """What IT allows notifications to reach, asked when a case type is checked. Each method
    answers the problem (what is wrong and how to fix it), or ``None`` when allowed."""

    def webhook_problem(self, url: str) -> str | None:
        """Whether a webhook may post to ``url`` (the allowlist; internal addresses)."""
        ...

    def topic_problem(self, topic: str) -> str | None:
        """Whether a Kafka notification may publish to ``topic`` (not caseledger's own)."""
        ...

    def secret_problem(self, name: str) -> str | None:
        """Whether a secret called ``name`` is set."""
        ...


def is_single_address(text: str) -> bool:
    """``text`` is exactly one plain ASCII address (``local@domain.tld``), at most 254
    characters: no display name, comment, quoting, comma or whitespace."""
    return len(text) <= 254 and _ADDRESS.fullmatch(text) is not None


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, a lone surrogate), or ``None``."""
    if "\x00" in text:
        return NO_NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text; it holds a lone surrogate"
    return None


def unstorable_in(value: Any, path: str) -> list[str]:
    """``path: problem`` for every string (keys included) in ``value`` that cannot be stored."""
    if isinstance(value, str):
        problem = unstorable(value)
        return [] if problem is None else [f"{path}: {problem}"]
    if isinstance(value, Mapping):
        found = [f"{path}: a key {p}" for key in value if (p := unstorable(str(key)))]
        for key, item in value.items():
            found += unstorable_in(item, f"{path}.{key}" if unstorable(str(key)) is None else path)
        return found
    if isinstance(value, list):
        return [
            p for index, item in enumerate(value) for p in unstorable_in(item, f"{path}[{index}]")
        ]
    return []


_CREDENTIALS = (
    "holds credentials (user:password@); documents are readable by every role, so name a "
    "secret instead: `secret: claims_webhook` (set its value with `caseledger secrets set "
    "claims_webhook`); it is sent as the Authorization header"
)


def _holds_credentials(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook's target whatever the policy, or ``None``."""
    if _holds_credentials(url):  # before anything that would show the URL
        return _CREDENTIALS
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        return f"is not a URL ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL such as https://example.com/hook"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "holds whitespace or control characters; encode them (%20)"
    return None


def credentials_in(document: Mapping[str, Any]) -> list[str]:
    """``path: problem`` for each webhook URL of ``document`` that holds credentials: such a
    document is refused before anything of it is stored."""
    notifications = document.get("notifications")
    if not isinstance(notifications, Mapping):
        return []
    found = []
    for name, item in notifications.items():
        url = item.get("url") if isinstance(item, Mapping) else None
        if isinstance(url, str) and _holds_credentials(url):
            found.append(f"notifications.{name}.url: {_CREDENTIALS}")
    return found
