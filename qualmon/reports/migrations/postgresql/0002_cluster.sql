-- PostgreSQL twin of ../0002_cluster.sql: the same tables, columns and order of columns;
-- DOUBLE PRECISION for REAL, BIGINT for INTEGER.

CREATE TABLE instances (
    instance_id   TEXT PRIMARY KEY,
    advertise_url TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('serving', 'draining')),
    capacity_legs BIGINT NOT NULL,
    live_legs     BIGINT NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    lease_until   DOUBLE PRECISION NOT NULL
);

CREATE TABLE session_owners (
    session_id  TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    claimed_at  DOUBLE PRECISION NOT NULL,
    released_at DOUBLE PRECISION
);
CREATE INDEX session_owners_instance ON session_owners (instance_id);
