-- Session reports: derived numbers only (never audio, SDP, addresses or tokens).
-- Times are Unix epoch seconds (REAL); timeline and speech times are seconds since the
-- session started. A platform may reuse a session id, so a report is keyed by
-- (session_id, started_at) and child rows hang off its report_id.

CREATE TABLE reports (
    report_id     INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    started_at    REAL NOT NULL,
    checkpoint_at REAL NOT NULL,
    ended_at      REAL,
    end_reason    TEXT CHECK (end_reason IN ('ended', 'lost', 'interrupted', 'shutdown')),
    roles         TEXT NOT NULL,            -- JSON list
    turns         TEXT NOT NULL,            -- JSON object, the session JSON's "turns"
    UNIQUE (session_id, started_at)
);
CREATE INDEX reports_started ON reports (started_at);
CREATE INDEX reports_ended ON reports (ended_at);

CREATE TABLE legs (
    report_id                 INTEGER NOT NULL REFERENCES reports ON DELETE CASCADE,
    role                      TEXT NOT NULL,
    packets_received          INTEGER NOT NULL,
    packets_lost              INTEGER NOT NULL,
    loss_ratio                REAL NOT NULL,
    jitter_p50_seconds        REAL,
    jitter_p95_seconds        REAL,
    rtt_p50_seconds           REAL,
    rtt_p95_seconds           REAL,
    mos_min                   REAL,
    mos_mean                  REAL,
    dropouts                  INTEGER NOT NULL,
    dropout_seconds           REAL NOT NULL,
    dropouts_in_speech        INTEGER NOT NULL,
    dropout_in_speech_seconds REAL NOT NULL,
    speech_seconds            REAL NOT NULL,
    reconnects                INTEGER NOT NULL,
    end_reason                TEXT,
    PRIMARY KEY (report_id, role)
);

CREATE TABLE timeline (
    report_id         INTEGER NOT NULL REFERENCES reports ON DELETE CASCADE,
    role              TEXT NOT NULL,
    t_seconds         REAL NOT NULL,
    recent_loss_ratio REAL,
    jitter_seconds    REAL,
    rtt_seconds       REAL,
    mos               REAL,
    speaking          INTEGER NOT NULL,
    stalled           INTEGER NOT NULL,
    dropouts          INTEGER NOT NULL,
    PRIMARY KEY (report_id, role, t_seconds)
);

CREATE TABLE speech (
    report_id     INTEGER NOT NULL REFERENCES reports ON DELETE CASCADE,
    role          TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    start_seconds REAL NOT NULL,
    end_seconds   REAL NOT NULL,
    PRIMARY KEY (report_id, role, idx)
);

CREATE TABLE dropouts (
    report_id        INTEGER NOT NULL REFERENCES reports ON DELETE CASCADE,
    role             TEXT NOT NULL,
    t_seconds        REAL NOT NULL,
    duration_seconds REAL NOT NULL,
    in_speech        INTEGER                -- NULL: not yet known
);
CREATE INDEX dropouts_report ON dropouts (report_id);

-- Written by the warning engine through ReportStore.record_warning; role '' = session-wide.
CREATE TABLE warnings (
    report_id  INTEGER NOT NULL REFERENCES reports ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    role       TEXT NOT NULL DEFAULT '',
    raised_at  REAL NOT NULL,
    cleared_at REAL,
    value      REAL,
    threshold  REAL,
    PRIMARY KEY (report_id, kind, role, raised_at)
);
