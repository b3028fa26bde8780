"""Email over SMTP with STARTTLS and authentication (smtplib, run off the event loop)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from dcim.alerts.config import EmailChannel
from dcim.alerts.model import Notification
from dcim.alerts.notify.base import NotifyError, subject


def render(notification: Notification) -> str:
    lines = [notification.summary, ""]
    lines.append(f"state:    {notification.phase.value} ({notification.event})")
    lines.append(f"severity: {notification.severity.value}")
    lines.append(f"rule:     {notification.rule} {notification.rule_name}")
    lines.append(f"scope:    {notification.key}")
    lines.extend(f"{name + ':':9} {value}" for name, value in sorted(notification.labels.items()))
    if notification.children:
        lines.append(f"explains {notification.children} other alert(s)")
    if notification.fire_alarm:
        lines.append("FIRE ALARM: cannot be silenced")
    lines.append(f"incident: {notification.incident_id}")
    return "\n".join(lines) + "\n"


class EmailNotifier:
    def __init__(self, config: EmailChannel) -> None:
        self.name = config.name
        self._config = config

    def _message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = ", ".join(self._config.to)
        message["Subject"] = subject(notification)[:200]
        message["X-Dcim-Incident"] = notification.incident_id
        message.set_content(render(notification))
        return message

    def _deliver(self, message: EmailMessage) -> None:
        config = self._config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            smtp.ehlo()
            if config.starttls:
                context = ssl.create_default_context(
                    cafile=str(config.ca_file) if config.ca_file else None
                )
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username is not None:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            smtp.send_message(message)

    async def send(self, notification: Notification) -> None:
        try:
            await asyncio.to_thread(self._deliver, self._message(notification))
        except (OSError, smtplib.SMTPException) as exc:
            # the message names the class and server reply; never the password
            raise NotifyError(f"email {self.name}: {exc.__class__.__name__}: {exc}") from None

    async def aclose(self) -> None:
        return None
