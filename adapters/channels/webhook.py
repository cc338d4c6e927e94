"""The webhook channel: a notification POSTed as JSON to the URL its case type names.

The egress policy IT sets (``infra.egress``, handed in by the composition root as an
:class:`Egress`) checks every URL and the addresses its name resolves to; the POST goes to the
address it checked (no second DNS lookup), follows no redirect and never reads the answer's
body. A notification that names a secret sends its value as the ``Authorization`` header. The
notification id travels as the ``X-Caseledger-Notification`` header and as the JSON's
``notification_id``.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol
from urllib.parse import urlsplit

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeout

from adapters.channels import SEND_TIMEOUT_S, Channel, Delivery, DeliveryError, reason
from domain.errors import DomainError
from services.application import Definitions

IPAddress = IPv4Address | IPv6Address


class TargetRefused(Exception):
    """The egress policy refuses a webhook's target; the text says why and who can change it."""


class Destination(Protocol):
    """Where a checked webhook URL points."""

    @property
    def scheme(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class Egress(Protocol):
    """The egress policy, as the webhook channel asks it."""

    def resolve(self, url: str) -> tuple[Destination, IPAddress]:
        """Where ``url`` points and the address to connect to, each address its name resolves
        to checked; :class:`TargetRefused` when the policy refuses it, ``OSError`` when the
        name does not resolve."""
        ...


class SecretValues(Protocol):
    """Reads a secret's value, to send it (``infra.secrets.SecretStore``)."""

    def value(self, name: str) -> str:
        """The value of secret ``name``; a :class:`DomainError` when none is set."""
        ...


class WebhookChannel(Channel):
    """POSTs notifications to the targets ``egress`` allows."""

    def __init__(self, egress: Egress, definitions: Definitions, secrets: SecretValues) -> None:
        self.egress = egress
        self.definitions = definitions
        self.secrets = secrets

    def send(self, delivery: Delivery) -> str:
        """POST the message as JSON to the target the egress policy allows, at the address it
        checked; a redirect is an answer like any other, and only its status is kept."""
        message = delivery.message
        url = str(message.get("target") or "")
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no credentials, path
        fix = (
            f"correct the url of notification {message.get('notification')!r} in a new version "
            f"of case type {message.get('case_type')!r}"
        )
        try:
            target, address = self.egress.resolve(url)
        except TargetRefused as refused:
            raise DeliveryError(f"webhook: {refused}; or {fix}") from None
        except OSError as error:  # the name does not resolve
            raise _unreachable(origin, fix, error) from error
        headers = {
            "Host": parts.netloc.rpartition("@")[2],
            "Content-Type": "application/json",
            "X-Caseledger-Notification": delivery.notification_id,
        } | self._authorization(delivery)
        payload = json.dumps({"notification_id": delivery.notification_id, **message})
        path = f"{parts.path or '/'}{'?' * bool(parts.query)}{parts.query}"
        try:
            status = _post(target, address, path, headers, payload.encode())
        except NewConnectionError as error:  # a subclass of the timeout below
            raise _unreachable(origin, fix, error) from error
        except (HTTPTimeout, TimeoutError) as error:
            raise DeliveryError(
                f"webhook: {origin} did not answer within {SEND_TIMEOUT_S} s; check that the "
                f"receiver is up and reachable from the notifier, or {fix}"
            ) from error
        except (HTTPError, OSError) as error:
            raise _unreachable(origin, fix, error) from error
        return _outcome(origin, status, fix)

    def _authorization(self, delivery: Delivery) -> dict[str, str]:
        """The Authorization header from the secret the notification names, if it names one."""
        name = delivery.message.get("notification")
        case = delivery.case
        try:
            definition = self.definitions.definition(case.case_type, case.case_type_version)
        except DomainError as problem:
            raise DeliveryError(f"webhook: {problem.message}; {problem.hint}") from None
        notification = definition.notifications.get(str(name))
        if notification is None or notification.secret is None:
            return {}
        try:
            return {"Authorization": self.secrets.value(notification.secret)}
        except DomainError:
            raise DeliveryError(
                f"webhook: no secret is called {notification.secret!r}; set it with `caseledger "
                f"secrets set {notification.secret}` (or PUT /secrets/{notification.secret})"
            ) from None


def _outcome(origin: str, status: int, fix: str) -> str:
    """What the receiver's answer means: delivered, or what to do about a refusal."""
    if 300 <= status < 400:
        raise DeliveryError(
            f"webhook: {origin} answered {status}; redirects are not followed: {fix} with "
            "the address the receiver redirects to"
        )
    if status >= 400:
        raise DeliveryError(
            f"webhook: {origin} answered {status}; the receiver refused the message: check "
            f"its log, or {fix}"
        )
    return f"webhook {origin} answered {status}"


def _unreachable(origin: str, fix: str, error: BaseException) -> DeliveryError:
    return DeliveryError(
        f"webhook: could not deliver to {origin} ({reason(error)}); check that the "
        f"receiver is up and reachable from the notifier, or {fix}"
    )


def _post(
    target: Destination, address: IPAddress, path: str, headers: dict[str, str], body: bytes
) -> int:
    """POST ``body`` to ``address`` (the checked one: no second DNS lookup), never following a
    redirect and never reading the answer's body; answers the status code."""
    tls = {"server_hostname": target.host, "assert_hostname": target.host}
    pool = (
        HTTPSConnectionPool(str(address), target.port, **tls)  # type: ignore[arg-type]
        if target.scheme == "https"
        else HTTPConnectionPool(str(address), target.port)
    )
    with pool:
        answer = pool.urlopen(
            "POST",
            path,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            timeout=Timeout(SEND_TIMEOUT_S),
            preload_content=False,
            assert_same_host=False,
        )
        answer.release_conn()
        return int(answer.status)
