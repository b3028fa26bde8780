"""Email over SMTP with STARTTLS and authentication (smtplib, run off the event loop).

Subject and body come from the `subject` and `body` templates; the runbook link is also
in the X-Dcim-Runbook header, for mail rules and ticket systems.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from dcim.alerts.config import AlertLinks, EmailChannel
from dcim.alerts.model import Notification
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.notify.templating import Messages


class EmailNotifier:
    def __init__(self, config: EmailChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self._config = config
        self._messages = Messages("email", config.name, config.templates, links)

    def _message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = ", ".join(self._config.to)
        links = self._messages.links(notification)
        message["Subject"] = self._messages.render("subject", notification, links)
        message["X-Dcim-Incident"] = notification.incident_id
        if links.runbook:
            message["X-Dcim-Runbook"] = links.runbook
        message.set_content(self._messages.render("body", notification, links) + "\n")
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
