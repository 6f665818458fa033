//! The store's schema, in order: one set of migrations for SQLite and PostgreSQL, run by
//! sqlx's migrator when the store opens (`Store::open`).

/// The schema, in order. Types are chosen to mean the same in SQLite and PostgreSQL.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs, fault ledger and target locks",
        "CREATE TABLE drill_runs (
        id TEXT PRIMARY KEY,
        playbook TEXT NOT NULL,
        file TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        owner TEXT NOT NULL,
        heartbeat_ms BIGINT NOT NULL,
        lease_ms BIGINT NOT NULL,
        started_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        time_scale DOUBLE PRECISION NOT NULL,
        report TEXT,
        markdown TEXT,
        junit TEXT
    );
    CREATE INDEX drill_runs_status ON drill_runs (status);
    CREATE TABLE drill_faults (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        drill TEXT NOT NULL,
        fault TEXT NOT NULL,
        backend TEXT NOT NULL,
        record TEXT NOT NULL,
        changes TEXT NOT NULL,
        manual_restore TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        error TEXT,
        intent_ms BIGINT NOT NULL,
        applied_ms BIGINT,
        reverted_ms BIGINT
    );
    CREATE INDEX drill_faults_run ON drill_faults (run_id);
    CREATE INDEX drill_faults_state ON drill_faults (state);
    CREATE TABLE drill_locks (
        target TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        since_ms BIGINT NOT NULL
    );",
    ),
    (
        2,
        "fencing epochs, the steps of composite faults, the call log",
        "ALTER TABLE drill_runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE drill_fault_steps (
        fault_id TEXT NOT NULL,
        step TEXT NOT NULL,
        state TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (fault_id, step)
    );
    CREATE TABLE drill_calls (
        run_id TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        label TEXT NOT NULL
    );
    CREATE INDEX drill_calls_run ON drill_calls (run_id);",
    ),
    (
        3,
        "the daemon: fires of schedules, schedules seen, halt, the API's audit",
        "CREATE TABLE drill_fires (
        playbook TEXT NOT NULL,
        nominal_ms BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        run_id TEXT,
        owner TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (playbook, nominal_ms)
    );
    CREATE TABLE drill_schedules (
        playbook TEXT PRIMARY KEY,
        since_ms BIGINT NOT NULL
    );
    CREATE TABLE drill_halt (
        id BIGINT PRIMARY KEY,
        reason TEXT NOT NULL,
        by_whom TEXT NOT NULL,
        since_ms BIGINT NOT NULL
    );
    CREATE TABLE drill_audit (
        at_ms BIGINT NOT NULL,
        subject TEXT NOT NULL,
        role TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status BIGINT NOT NULL,
        detail TEXT
    );
    CREATE INDEX drill_audit_at ON drill_audit (at_ms);",
    ),
    (
        4,
        "abort requests: any daemon on the store may abort any run",
        "CREATE TABLE drill_abort_requests (
        run_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        by_whom TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );",
    ),
    (
        5,
        "load shards: the plan they share, their reports, and the stop they obey",
        "CREATE TABLE drill_shard_plans (
        run_id TEXT PRIMARY KEY,
        shards BIGINT NOT NULL,
        plan TEXT NOT NULL,
        stop_reason TEXT,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE drill_shard_reports (
        run_id TEXT NOT NULL,
        shard BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        done BIGINT NOT NULL,
        error TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, shard, seq)
    );",
    ),
];
