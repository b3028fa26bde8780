"""Routing: a channel that heard an incident fire always hears it resolve."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dcim.alerts.config import RetryPolicy, Route
from dcim.alerts.model import Notification, Phase, Severity
from dcim.alerts.notify.base import Notifier
from dcim.alerts.notify.dispatch import Dispatcher
from dcim.alerts.store import AlertStore


class Nowhere:
    """A notifier that is never started: routing is what is under test."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, notification: Notification) -> None:
        raise AssertionError("not sent in this test")

    async def aclose(self) -> None:
        return None


def note(event: str, severity: Severity, incident: str = "inc-1") -> Notification:
    return Notification(
        event=event,
        at=100.0,
        incident_id=incident,
        rule="ashrae.inlet_temp",
        rule_name="inlet",
        key="k",
        severity=severity,
        phase=Phase.RESOLVED if event == "resolved" else Phase.FIRING,
        summary="s",
        labels={"site": "dc1", "device": "t1"},
        started_at=0.0,
        fired_at=1.0,
        resolved_at=100.0 if event == "resolved" else None,
    )


def test_resolve_reaches_the_channel_that_heard_the_warning(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.sqlite3")
    notifiers: dict[str, Notifier] = {"pager": Nowhere("pager"), "chat": Nowhere("chat")}
    routes = [
        Route(channels=["chat"], severities=[Severity.WARNING]),
        Route(channels=["pager"], severities=[Severity.CRITICAL]),
    ]
    dispatcher = Dispatcher(
        store,
        notifiers,
        routes=routes,
        retry=RetryPolicy(),
        on_health=lambda _c, _e: None,
        clock=lambda: 0.0,
    )
    fired = note("firing", Severity.WARNING)
    assert dispatcher.route(fired) == ["chat"]
    store.save([], [("chat", fired)])
    # it escalated to critical before it resolved: the pager route matches the resolve,
    # and chat, which only ever saw the warning, must still hear that it is over
    resolved = note("resolved", Severity.CRITICAL)
    assert sorted(dispatcher.route(resolved)) == ["chat", "pager"]
    # an incident chat never heard of does not reach it
    assert dispatcher.route(note("resolved", Severity.CRITICAL, "inc-2")) == ["pager"]
    store.close()


class Pager(Nowhere):
    """A channel whose peer pages until it hears of the ack (PagerDuty, Opsgenie)."""

    follows_acknowledgements = True


def test_an_ack_reaches_the_pagers_that_heard_the_incident_and_routes_that_ask(
    tmp_path: Path,
) -> None:
    store = AlertStore(tmp_path / "alerts.sqlite3")
    notifiers: dict[str, Notifier] = {
        "pager": Pager("pager"),
        "other-pager": Pager("other-pager"),
        "chat": Nowhere("chat"),
        "mail": Nowhere("mail"),
    }
    routes = [
        Route(channels=["pager", "mail"], severities=[Severity.CRITICAL]),
        Route(channels=["chat"], events=["firing", "resolved", "acknowledged"]),
    ]
    dispatcher = Dispatcher(
        store,
        notifiers,
        routes=routes,
        retry=RetryPolicy(),
        on_health=lambda _c, _e: None,
        clock=lambda: 0.0,
    )
    fired = note("firing", Severity.CRITICAL)
    assert dispatcher.route(fired) == ["pager", "mail", "chat"]
    store.save([], [(channel, fired) for channel in dispatcher.route(fired)])
    acked = replace(fired, event="acknowledged", acknowledged_by="alice")
    # the pager must stop paging; chat asked for acks; mail did not; the other pager
    # never heard of this incident
    assert dispatcher.route(acked) == ["pager", "chat"]
    # without routes every channel that heard of it hears the ack
    everyone = Dispatcher(
        store,
        notifiers,
        routes=[],
        retry=RetryPolicy(),
        on_health=lambda _c, _e: None,
        clock=lambda: 0.0,
    )
    assert everyone.route(acked) == ["pager", "chat", "mail"]
    store.close()
