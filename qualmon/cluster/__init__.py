"""Many instances as one service: membership with leases, who owns a session (no HTTP here)."""
