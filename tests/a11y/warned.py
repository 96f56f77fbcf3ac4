"""A session with warnings raised for real on its WHIP legs: loss on the client's leg
(high_loss, a warning) and the therapist's media cut (media_stopped, critical)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from qualmon.core.warnings import WarningEvent
from qualmon.service.keys import warnings_key
from qualmon.sim.impairment import ImpairmentConfig

from ..conftest import Service, wait_for


def active(service: Service, session: str, kind: str) -> WarningEvent | None:
    runtime = service.app[warnings_key]
    return next((w for w in runtime.active(session) if w.kind == kind), None)


async def warn_on_legs(
    service: Service, publishers: Any, session: str, *, critical: bool = True
) -> None:
    """Both legs live, then 20 % loss on the client's and (with `critical`) none of the
    therapist's packets; returns once high_loss (and media_stopped) are raised. Give the
    service a long `lost_after_seconds`, or the silent leg ends as lost after 20 s."""
    client = await publishers(service, session, "client", impairment=ImpairmentConfig(seed=2))
    therapist = await publishers(service, session, "therapist", impairment=ImpairmentConfig(seed=3))

    def live() -> bool:
        snapshot = service.sessions.snapshot_of(session, time.monotonic())
        roles = snapshot.roles if snapshot is not None else {}
        return all(r in roles and roles[r].state == "live" for r in ("client", "therapist"))

    await wait_for(live, timeout=15.0, what="both legs live")
    assert client.impairment is not None and therapist.impairment is not None
    client.impairment.config = replace(client.impairment.config, loss_ratio=0.2)
    if critical:
        therapist.impairment.config = replace(therapist.impairment.config, loss_ratio=1.0)
    await wait_for(lambda: active(service, session, "high_loss"), timeout=15.0, what="high_loss")
    if critical:
        await wait_for(
            lambda: active(service, session, "media_stopped"), timeout=15.0, what="media_stopped"
        )
