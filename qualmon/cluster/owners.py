"""The owner of a session, as the HTTP relay asks for it (no store, no aiohttp here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Owner:
    """The instance that measures a session."""

    instance_id: str
    "The owner's QUALMON_INSTANCE_ID."
    base_url: str
    "Where other instances reach it (its advertise URL: scheme, host, port; no path)."
    local: bool
    "True when the owner is the instance asking."


class SessionOwners(Protocol):
    """Who owns which session; the relay asks before handling a request for one."""

    async def owner_of(self, session_id: str, *, claim: bool) -> Owner | None:
        """The session's owner; with `claim`, claim it for someone if nobody owns it.

        None: nobody owns it and `claim` was False (handle the request locally)."""
        ...

    async def instances(self) -> Sequence[Owner]:
        """Every live instance, self included (`local`): the cluster's session list fans out
        to them, and an admin's WHIP PATCH/DELETE looks for a resource on each."""
        ...
