"""Outgoing mail (e-mail invitations) over SMTP. The blocking smtplib runs in a worker thread; a mail
that cannot be delivered is logged and never undoes the change that caused it."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from talkd.config import MailSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invitation:
    to: str
    inviter: str
    room_name: str
    room_token: str


class Mailer:
    def __init__(self, settings: MailSettings, base_url: str) -> None:
        self.settings = settings
        self.base_url = base_url.rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.settings.smtp_host)

    def invitation_message(self, invitation: Invitation) -> EmailMessage:
        link = f"{self.base_url}/call/{invitation.room_token}"
        subject_room = f" to “{invitation.room_name}”" if invitation.room_name else ""
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = invitation.to
        message["Subject"] = f"{invitation.inviter} invited you to a conversation{subject_room}"
        message.set_content(
            f"{invitation.inviter} invited you to join a conversation{subject_room}.\n\n"
            f"Join it here: {link}\n")
        return message

    async def send_invitation(self, invitation: Invitation) -> bool:
        if not self.enabled:
            return False
        message = self.invitation_message(invitation)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("invitation mail not sent", extra={"error": type(exc).__name__})
            return False
        return True

    def _send(self, message: EmailMessage) -> None:
        settings = self.settings
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
