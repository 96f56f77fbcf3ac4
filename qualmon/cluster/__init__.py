"""Many instances on one store: membership with leases, session ownership (no HTTP here)."""
