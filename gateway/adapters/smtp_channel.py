"""E-mail over SMTP (aiosmtplib): one message, one connection, one deadline.

TLS is the organisation's choice per channel: implicit TLS ("tls", port 465), STARTTLS
required ("starttls", port 587; refused if the server does not offer it), or none ("none",
accepted by the API for a relay on loopback only). Certificates are always verified.

Failures become error classes (gateway.domain.outbox), never the server's reply text, which can
quote addresses back. `Message-ID` is derived from the outbox id, so a mailbox that sees a retry
of a message it already has can tell.
"""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from gateway.domain.outbox import (
    CONNECTION,
    REJECTED,
    TEMPORARY,
    TIMEOUT,
    TLS,
    DeliveryFailed,
    EmailChannel,
    OutboxMessage,
)

MESSAGE_ID_DOMAIN = "safeguarding-gateway.invalid"


def email_for(channel: EmailChannel, to: str, message: OutboxMessage) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = channel.from_address
    mail["To"] = to
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = f"<{message.id}@{MESSAGE_ID_DOMAIN}>"
    mail["X-Gateway-Notification"] = message.notification_id
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies loop back
    mail.set_content(message.body)
    return mail


class SmtpChannel:
    async def send(
        self, channel: EmailChannel, to: str, message: OutboxMessage, deadline: float
    ) -> None:
        mail = email_for(channel, to, message)
        try:
            async with asyncio.timeout(deadline):
                await aiosmtplib.send(
                    mail,
                    hostname=channel.host,
                    port=channel.port,
                    username=channel.username,
                    password=channel.password,
                    use_tls=channel.security == "tls",
                    start_tls=channel.security == "starttls",
                    timeout=deadline,
                )
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            raise DeliveryFailed(TIMEOUT) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            raise DeliveryFailed(_by_code(min(codes) if codes else 500)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailed(_by_code(exc.code)) from exc
        except aiosmtplib.SMTPNotSupported as exc:  # STARTTLS required but not offered
            raise DeliveryFailed(TLS) from exc
        except ssl.SSLError as exc:
            raise DeliveryFailed(TLS) from exc
        except aiosmtplib.SMTPException as exc:
            # aiosmtplib (pinned) says "STARTTLS extension not supported" with the base class;
            # the message is never sent in the clear (tests/notifications checks both).
            raise DeliveryFailed(TLS if "STARTTLS" in str(exc) else CONNECTION) from exc
        except OSError as exc:
            raise DeliveryFailed(CONNECTION) from exc


def _by_code(code: int) -> str:
    """SMTP 5xx is a refusal for good (RFC 5321 §4.2.1); anything else may pass later."""
    return REJECTED if 500 <= code < 600 else TEMPORARY
