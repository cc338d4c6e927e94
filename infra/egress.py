"""Egress policy: where notifications may go, as IT sets it in the settings.

A webhook's target must match an entry of ``CASELEDGER_WEBHOOK_ALLOWLIST`` (``host``,
``host:port``, ``*.domain``, ``*`` for any public host, or a URL prefix). Internal addresses
(private, loopback, link-local, multicast, unspecified, reserved, IPv6 forms that embed an
IPv4 address) are reached only when an entry names the host or the address exactly; IPv4
written in other notations than dotted decimal (``0x7f000001``, ``2130706433``, ``127.1``) is
refused. A case type is checked when published (names are not resolved then), and every
send is checked again after DNS resolution and connects to the address it checked, so a
name that later resolves inside the network gets nothing.

A Kafka notification may not publish to ``CASELEDGER_KAFKA_TOPIC`` nor to a topic starting
with one of ``CASELEDGER_RESERVED_TOPIC_PREFIXES``.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from urllib.parse import unquote, urlsplit

from infra.secrets import SecretStore
from infra.settings import Settings

IPAddress = IPv4Address | IPv6Address
ALLOWLIST = "CASELEDGER_WEBHOOK_ALLOWLIST"
_NAT64 = IPv6Network("64:ff9b::/96")
_HOST = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(Exception):
    """The policy refuses a target; the text says why and who can change it."""


@dataclass(frozen=True)
class Target:
    """Where a webhook URL points: scheme, host (lowercase), port, and the address when the
    host is one."""

    scheme: str
    host: str
    port: int
    path: str
    ip: IPAddress | None

    @property
    def shown(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Entry:
    """One allowlist entry; ``host`` is ``*``, ``*.domain``, a name or an address."""

    host: str
    port: int | None = None
    scheme: str | None = None
    path: str = ""

    def matches(self, target: Target) -> bool:
        if self.scheme is not None and self.scheme != target.scheme:
            return False
        if self.port is not None and self.port != target.port:
            return False
        if not target.path.startswith(self.path):
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return target.ip is None and target.host.endswith(self.host[1:])
        return self.host == target.host

    def names(self, target: Target, address: IPAddress) -> bool:
        """Whether this entry names the target's host, or the address it resolved to."""
        if self.host.startswith("*"):
            return False
        return self.matches(target) or self.matches(replace(target, host=str(address)))


def internal_kind(ip: IPAddress) -> str | None:
    """What kind of internal address ``ip`` is (``a loopback address``), or ``None`` when it
    is a public one."""
    if isinstance(ip, IPv6Address):
        teredo = ip.teredo[1] if ip.teredo else None
        nat64 = IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        embedded = ip.ipv4_mapped or ip.sixtofour or teredo or nat64
        if embedded is not None:
            return f"an IPv6 address that embeds the IPv4 address {embedded}"
    for test, kind in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_unspecified", "an unspecified"),
        ("is_private", "a private"),
        ("is_reserved", "a reserved"),
    ):
        if getattr(ip, test):
            return f"{kind} address"
    return None if ip.is_global else "a reserved address"


def _address(host: str) -> IPAddress | None:
    """The address ``host`` is (canonical notations only), ``None`` for a name; refuses
    other IPv4 notations and what is neither."""
    try:
        return ip_address(host)
    except ValueError:
        pass
    try:
        meaning = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        meaning = None
    if meaning is not None:
        raise EgressRefused(
            f"{host!r} is an IPv4 address in an unusual notation (it means {meaning}); "
            "write addresses in dotted decimal, such as 192.0.2.10"
        )
    if not _HOST.fullmatch(host):
        raise EgressRefused(
            f"{host!r} is not a host name (ASCII letters, digits, - and dots; write "
            "international names in their xn-- form)"
        )
    return None


def target_of(url: str) -> Target:
    """The target of an http(s) URL, or :class:`EgressRefused` for an odd host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    if {".", ".."} & set(unquote(parts.path).split("/")):
        raise EgressRefused("the path holds . or .. segments; write it as the receiver reads it")
    ip = _address(host)
    shown = str(ip) if ip is not None else host
    return Target(parts.scheme, shown, port, parts.path or "/", ip)


def _entry(text: str) -> Entry:
    if "://" in text:
        target = target_of(text)
        return Entry(target.host, target.port, target.scheme, target.path)
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number)
    host = host.lower().rstrip(".")
    if host == "*" or host.startswith("*."):
        if host != "*":
            _address(host[2:])
        return Entry(host, port)
    ip = _address(host)
    return Entry(str(ip) if ip is not None else host, port)


@dataclass(frozen=True)
class EgressPolicy:
    """The webhook allowlist and the reserved topics, from the settings."""

    entries: tuple[Entry, ...]
    allowlist: str
    case_topic: str
    reserved_prefixes: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        entries = []
        for text in (t.strip() for t in settings.webhook_allowlist.split(",")):
            if not text:
                continue
            try:
                entries.append(_entry(text))
            except (ValueError, EgressRefused) as error:
                raise RuntimeError(
                    f"{ALLOWLIST}: the entry {text!r} is not a host, host:port, *.domain, * or "
                    f"URL prefix ({error})"
                ) from None
        prefixes = tuple(
            p.strip() for p in settings.reserved_topic_prefixes.split(",") if p.strip()
        )
        return cls(
            tuple(entries), settings.webhook_allowlist.strip(), settings.kafka_topic, prefixes
        )

    def check(self, url: str) -> Target:
        """The target of ``url`` when the allowlist allows it (names are not resolved)."""
        target = target_of(url)
        if target.ip is not None:
            self._check_address(target, target.ip, "is")
        if not any(entry.matches(target) for entry in self.entries):
            raise EgressRefused(
                f"{target.shown} is not in the webhook allowlist ({ALLOWLIST}: "
                f"{self.allowlist or 'empty'}); ask IT to add it, or use an allowed target"
            )
        return target

    def resolve(self, url: str) -> tuple[Target, IPAddress]:
        """The target of ``url`` and the address to connect to, each address the name
        resolves to checked; ``socket.gaierror`` when it does not resolve."""
        target = self.check(url)
        if target.ip is not None:
            return target, target.ip
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        addresses = sorted(
            {ip_address(str(info[4][0]).partition("%")[0]) for info in found},
            key=lambda ip: (ip.version, int(ip)),
        )
        for address in addresses:
            self._check_address(target, address, "resolves to")
        return target, addresses[0]

    def _check_address(self, target: Target, address: IPAddress, verb: str) -> None:
        kind = internal_kind(address)
        if kind is None or any(entry.names(target, address) for entry in self.entries):
            return
        said = f"{address} is {kind}" if verb == "is" else f"{target.host} {verb} {address}, {kind}"
        raise EgressRefused(
            f"{said}; webhooks reach internal addresses only when {ALLOWLIST} names them "
            "exactly (ask IT)"
        )

    def problem(self, url: str) -> str | None:
        try:
            self.check(url)
        except EgressRefused as refused:
            return str(refused)
        return None

    def topic_problem(self, topic: str) -> str | None:
        if topic != self.case_topic and not topic.startswith(self.reserved_prefixes):
            return None
        return (
            f"topic {topic!r} is reserved for caseledger (its case events go to "
            f"{self.case_topic!r}; topics starting with {', '.join(self.reserved_prefixes)} are "
            "kept for it and for Kafka); choose another topic"
        )


@dataclass(frozen=True)
class NotificationRules:
    """The :class:`services.notification_targets.NotificationPolicy` of this installation:
    the egress policy, and the secrets that are set."""

    egress: EgressPolicy
    secrets: SecretStore

    def webhook_problem(self, url: str) -> str | None:
        return self.egress.problem(url)

    def topic_problem(self, topic: str) -> str | None:
        return self.egress.topic_problem(topic)

    def secret_problem(self, name: str) -> str | None:
        if self.secrets.exists(name):
            return None
        return (
            f"no secret is called {name!r}; set it first: caseledger secrets set {name} "
            f"(or PUT /secrets/{name})"
        )
