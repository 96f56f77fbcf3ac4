"""Many instances as one service: who owns a session, and which instances there are."""
