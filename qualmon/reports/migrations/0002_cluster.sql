-- The cluster: instances sharing this store, and which instance owns which session.
-- Times are Unix epoch seconds (REAL), written from each instance's wall clock; an instance
-- whose lease_until has passed is gone (it refreshes every 2 s, the lease is 6 s).

CREATE TABLE instances (
    instance_id   TEXT PRIMARY KEY,
    advertise_url TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('serving', 'draining')),
    capacity_legs INTEGER NOT NULL,
    live_legs     INTEGER NOT NULL,
    started_at    REAL NOT NULL,
    lease_until   REAL NOT NULL
);

-- One row per session: claimed atomically by one instance; a claim whose owner's lease ran
-- out, or that was released (the session ended on its owner), may be claimed again.
-- Released rows stay (reads of a recently ended session still go to its owner, which holds
-- it in memory) until the owner forgets them; no foreign key: an owner's row may go first.
CREATE TABLE session_owners (
    session_id  TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    claimed_at  REAL NOT NULL,
    released_at REAL
);
CREATE INDEX session_owners_instance ON session_owners (instance_id);
