"""The membership in the app: this instance registered in the store while the app runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..cluster.identity import advertise_url_of
from ..cluster.membership import Membership
from .keys import (
    drain_key,
    instance_id_key,
    membership_key,
    metrics_key,
    owners_key,
    sessions_key,
    settings_key,
    store_key,
)


async def _membership_running(app: web.Application) -> AsyncIterator[None]:
    membership = app[membership_key]
    await membership.start()
    yield
    await membership.stop()


async def _leave_on_shutdown(app: web.Application) -> None:
    """First thing at shutdown, while legs close and reports are saved: the instance takes
    no new session, so others should not wait out its lease."""
    app[membership_key].leave()


def setup(app: web.Application) -> None:
    """Call after report_routes.setup (the store) and after the store's cleanup context is
    in place, so the membership stops (and leaves the cluster) before the store closes."""
    settings = app[settings_key]
    sessions = app[sessions_key]
    membership = Membership(
        app[store_key],
        instance_id=app[instance_id_key],
        advertise_url=advertise_url_of(settings),
        capacity_legs=settings.max_legs,
        live_legs=sessions.live_leg_count,
        local_sessions=lambda: {s.id for s in sessions.live_sessions()},
        is_local=sessions.is_live,
        registry=app[metrics_key].registry,
    )
    app[membership_key] = membership
    app[owners_key] = membership
    app[drain_key].on_drain.append(membership.set_draining)
    app.cleanup_ctx.append(_membership_running)
    app.on_shutdown.insert(0, _leave_on_shutdown)
