"""Who owns a session: what the service asks and the membership answers (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Owner:
    """The instance a session belongs to."""

    instance_id: str
    base_url: str
    "Its http(s) base URL (QUALMON_ADVERTISE_URL), where relayed requests go."
    local: bool
    "This instance: handle the request here."


class SessionOwners(Protocol):
    """What the service's relay asks (`Membership`; tests pass small fakes)."""

    async def owner_of(self, session_id: str, *, claim: bool) -> Owner | None:
        """The session's owner; with `claim` (the request starts a leg, a probe sample or
        an attach), claimed for the rendezvous choice if it has none. None: nobody owns it
        and nobody claimed it: handle it here."""
        ...
