"""Sign-in links by e-mail over SMTP (aiosmtplib); structurally a `services.staff_auth.SignInMail`.

One message per link, sent at once with a deadline. The message carries the link and the
organisation's name, nothing else about the person; nothing of it is logged (the link is a
secret until used). When the outbox (DESIGN §3 "Notifications") lands, this class can be
replaced by one that writes the message to the outbox and lets its SMTP channel deliver it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import aiosmtplib

from gateway.domain.staff_session import SIGNIN_LINK_TTL
from gateway.services.staff_auth import MailUnavailable

__all__ = ["SmtpSignInMail", "SmtpTarget", "signin_message"]

SmtpSecurity = Literal["none", "starttls", "tls"]


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    sender: str
    security: SmtpSecurity = "starttls"
    timeout_seconds: float = 10.0


def signin_message(sender: str, to: str, link: str, organisation: str) -> EmailMessage:
    minutes = int(SIGNIN_LINK_TTL.total_seconds() // 60)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"Sign in to {organisation}'s safeguarding gateway"
    message.set_content(
        "Someone asked to sign in to the safeguarding gateway with this address.\n\n"
        f"To sign in, open this link in the same browser, within {minutes} minutes:\n\n"
        f"{link}\n\n"
        "The link works once. If you did not ask for it, ignore this e-mail: nobody can use "
        "it from another browser.\n"
    )
    return message


class SmtpSignInMail:
    def __init__(self, target: SmtpTarget) -> None:
        self._target = target

    async def send(self, to: str, link: str, organisation: str) -> None:
        target = self._target
        message = signin_message(target.sender, to, link, organisation)
        try:
            await aiosmtplib.send(
                message,
                hostname=target.host,
                port=target.port,
                use_tls=target.security == "tls",
                start_tls=target.security == "starttls",
                timeout=target.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailUnavailable(type(exc).__name__) from exc
