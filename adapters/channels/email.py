"""The e-mail channel: a notification mailed through an SMTP relay.

Recipients are plain addresses, or ``role:x`` looked up in the role addresses IT sets
(``CASELEDGER_NOTIFY_ROLE_ADDRESSES``); a recipient that is not one plain address is skipped
and named in the recorded detail. The notification id travels as ``Message-ID`` and
``X-Caseledger-Notification``.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from urllib.parse import urlsplit

from adapters.channels import SEND_TIMEOUT_S, Channel, Delivery, DeliveryError, reason
from services.notification_targets import NOT_AN_ADDRESS, is_single_address


class EmailChannel(Channel):
    """Mails notifications through the relay at ``smtp_url`` (``smtp://host:port``; ``None``
    when none is configured, and every message fails saying what to set)."""

    def __init__(
        self, smtp_url: str | None, mail_from: str, role_addresses: Mapping[str, list[str]]
    ) -> None:
        self.smtp_url = smtp_url
        self.mail_from = mail_from
        self.role_addresses = role_addresses

    def addresses(self, recipients: list[str]) -> tuple[list[str], list[str]]:
        """The e-mail addresses for the recipients (``role:x`` is looked up in the role
        addresses), and the recipients skipped for not being one plain address each."""
        found: list[str] = []
        for recipient in recipients:
            if recipient.startswith("role:"):
                found += self.role_addresses.get(recipient.removeprefix("role:"), [])
            elif "@" in recipient:
                found.append(recipient)
        unique = list(dict.fromkeys(found))
        return [a for a in unique if is_single_address(a)], [
            a for a in unique if not is_single_address(a)
        ]

    def send(self, delivery: Delivery) -> str:
        message = delivery.message
        smtp_url = self.smtp_url
        if not smtp_url:
            raise DeliveryError(
                "no mail relay is configured: set CASELEDGER_SMTP_URL (smtp://host:port)"
            )
        to, skipped = self.addresses(message["recipients"])
        skip = "; ".join(f"skipped {address[:80]!r}, which {NOT_AN_ADDRESS}" for address in skipped)
        if not to:
            raise DeliveryError(
                f"no e-mail address among the recipients {message['recipients']}; give roles "
                f"addresses in CASELEDGER_NOTIFY_ROLE_ADDRESSES{'; ' * bool(skip)}{skip}"
            )
        refused = self._mail(smtp_url, self._compose(delivery, to))
        delivered = [address for address in to if address not in refused]
        detail = f"mailed to {', '.join(delivered)} through {_relay(smtp_url)}"
        if refused:
            detail += f"; refused: {_refusals(refused)}"
        return f"{detail}; {skip}" if skip else detail

    def _compose(self, delivery: Delivery, to: list[str]) -> EmailMessage:
        message = delivery.message
        mail = EmailMessage()
        mail["From"] = self.mail_from
        mail["To"] = ", ".join(to)
        mail["Subject"] = _one_line(message.get("subject") or message["notification"])
        mail["Message-ID"] = f"<{delivery.notification_id}@caseledger>"
        mail["X-Caseledger-Notification"] = delivery.notification_id
        mail.set_content(message["body"])
        return mail

    @staticmethod
    def _mail(smtp_url: str, mail: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Hand ``mail`` to the relay; answers the recipients it refused."""
        url, relay = urlsplit(smtp_url), _relay(smtp_url)
        try:
            with smtplib.SMTP(
                url.hostname or "localhost", url.port or 25, timeout=SEND_TIMEOUT_S
            ) as smtp:
                return smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            raise DeliveryError(
                f"SMTP: the mail relay at {relay} refused every recipient"
                f" ({_refusals(error.recipients)}); correct the addresses (roles' addresses are in"
                " CASELEDGER_NOTIFY_ROLE_ADDRESSES)"
            ) from error
        except smtplib.SMTPException as error:
            raise DeliveryError(
                f"SMTP: the mail relay at {relay} refused the message ({error}); check the"
                " relay's log, and that it accepts mail from CASELEDGER_MAIL_FROM"
            ) from error
        except OSError as error:
            raise DeliveryError(
                f"SMTP: could not reach the mail relay at {relay} ({reason(error)}); start it, or "
                "point CASELEDGER_SMTP_URL (smtp://host:port) at a running one"
            ) from error


def _relay(smtp_url: str) -> str:
    url = urlsplit(smtp_url)
    return f"{url.hostname or 'localhost'}:{url.port or 25}"


def _one_line(text: str) -> str:
    """A header value: line breaks and other control characters become one space each run."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


def _refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{address}: {code} {text.decode(errors='replace')}"
        for address, (code, text) in refused.items()
    )
