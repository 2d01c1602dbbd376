/**
 * Numbered schema migrations. They live in code (not .sql files) so they ship inside dist.
 * Never edit a migration that has been released: add a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "hosts, devices, actions, host events",
    sql: `
      CREATE TABLE hosts (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        labels_json      TEXT NOT NULL DEFAULT '{}',
        token_hash       TEXT NOT NULL,
        state            TEXT NOT NULL DEFAULT 'offline' CHECK (state IN ('online', 'offline')),
        last_seen        TEXT,
        agent_version    TEXT,
        agent_started_at TEXT,
        created_at       TEXT NOT NULL
      ) STRICT;

      CREATE TABLE devices (
        host_id           TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
        id                TEXT NOT NULL,
        labels_json       TEXT NOT NULL DEFAULT '{}',
        capabilities_json TEXT NOT NULL DEFAULT '[]',
        resources_json    TEXT NOT NULL DEFAULT '[]',
        state_json        TEXT NOT NULL DEFAULT '{}',
        updated_at        TEXT NOT NULL,
        PRIMARY KEY (host_id, id)
      ) STRICT;

      -- No foreign key to hosts: the action history outlives the hosts it ran on.
      CREATE TABLE actions (
        id           TEXT PRIMARY KEY,
        host_id      TEXT NOT NULL,
        device_id    TEXT NOT NULL,
        action       TEXT NOT NULL,
        resource     TEXT,
        params_json  TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
        result_json  TEXT,
        error_json   TEXT,
        requested_by TEXT,
        queued_at    TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT,
        duration_ms  REAL
      ) STRICT;
      CREATE INDEX actions_host_queued ON actions (host_id, queued_at);
      CREATE INDEX actions_device_queued ON actions (host_id, device_id, queued_at);
      CREATE INDEX actions_status ON actions (status);

      CREATE TABLE host_events (
        id        INTEGER PRIMARY KEY,
        host_id   TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
        device_id TEXT,
        kind      TEXT NOT NULL,
        detail    TEXT,
        at        TEXT NOT NULL
      ) STRICT;
      CREATE INDEX host_events_host ON host_events (host_id, id);
    `,
  },
  {
    version: 2,
    name: "dispatch: selector targets and queued actions, device health, leases",
    // SQLite cannot drop NOT NULL, so actions is rebuilt: a queued selector action has no host or device yet.
    // seq gives a stable newest-first order for pagination (rowid is not stable across VACUUM unless aliased).
    sql: `
      CREATE TABLE actions_v2 (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        host_id       TEXT,
        device_id     TEXT,
        action        TEXT NOT NULL,
        resource      TEXT,
        params_json   TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
        result_json   TEXT,
        error_json    TEXT,
        requested_by  TEXT,
        queued_at     TEXT NOT NULL,
        started_at    TEXT,
        finished_at   TEXT,
        duration_ms   REAL,
        target_json   TEXT NOT NULL DEFAULT '{}',
        priority      INTEGER NOT NULL DEFAULT 0,
        lease_id      TEXT,
        attempts      INTEGER NOT NULL DEFAULT 0,
        dispatched_at TEXT
      ) STRICT;
      INSERT INTO actions_v2 (id, host_id, device_id, action, resource, params_json, status, result_json, error_json,
                              requested_by, queued_at, started_at, finished_at, duration_ms, target_json, attempts, dispatched_at)
        SELECT id, host_id, device_id, action, resource, params_json, status, result_json, error_json,
               requested_by, queued_at, started_at, finished_at, duration_ms,
               json_object('host', host_id, 'device', device_id), 1, started_at
        FROM actions ORDER BY queued_at, id;
      DROP TABLE actions;
      ALTER TABLE actions_v2 RENAME TO actions;
      CREATE INDEX actions_host_device_seq ON actions (host_id, device_id, seq);
      CREATE INDEX actions_status_seq ON actions (status, seq);

      ALTER TABLE devices ADD COLUMN health TEXT NOT NULL DEFAULT 'good' CHECK (health IN ('good', 'unknown', 'bad', 'maintenance'));
      ALTER TABLE devices ADD COLUMN health_reason TEXT;
      ALTER TABLE devices ADD COLUMN health_changed_at TEXT;

      CREATE TABLE leases (
        id           TEXT PRIMARY KEY,
        token_hash   TEXT NOT NULL UNIQUE,
        owner        TEXT NOT NULL,
        requested_by TEXT,
        ttl_s        INTEGER NOT NULL,
        cleanup_json TEXT,
        created_at   TEXT NOT NULL,
        expires_at   TEXT NOT NULL,
        ended_at     TEXT,
        end_reason   TEXT
      ) STRICT;
      CREATE INDEX leases_active ON leases (ended_at, expires_at);
      -- No foreign key to devices: a lease's history outlives a device that leaves the registry.
      CREATE TABLE lease_devices (
        lease_id  TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        host_id   TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (lease_id, host_id, device_id)
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: "operator API keys",
    // Only the sha256 of a key is stored. Names are unique so `env-admin` can be upserted at every start.
    sql: `
      CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        role         TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        key_hash     TEXT NOT NULL UNIQUE,
        created_at   TEXT NOT NULL,
        last_used_at TEXT
      ) STRICT;
    `,
  },
  {
    version: 4,
    name: "planner plans",
    // One row per plan: the model's answer, tokens and latency, and the actions that ran (the frame is a file).
    sql: `
      CREATE TABLE plans (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        host_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        resource TEXT,
        instruction TEXT NOT NULL,
        observation TEXT NOT NULL DEFAULT '',
        reasoning TEXT NOT NULL DEFAULT '',
        actions_json TEXT NOT NULL DEFAULT '[]',
        done INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        latency_ms REAL NOT NULL DEFAULT 0,
        model TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        frame_json TEXT,
        prompt TEXT NOT NULL DEFAULT '',
        answer TEXT NOT NULL DEFAULT '',
        error_json TEXT,
        executed_json TEXT,
        goal_id TEXT,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX plans_host_created ON plans (host_id, created_at DESC);
      CREATE INDEX plans_created ON plans (created_at);
      CREATE INDEX plans_goal ON plans (goal_id);
    `,
  },
  {
    version: 5,
    name: "test cases, campaigns, runs, run artifacts",
    // Runs keep a snapshot of their test cases (spec_json) so editing or deleting a test case never
    // rewrites history; results reference nothing by foreign key outside their own run for the same reason.
    sql: `
      CREATE TABLE testcases (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        spec_json  TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE campaigns (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        spec_json  TEXT NOT NULL,
        enabled    INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT;
      -- No ON DELETE on testcase_id: deleting a test case a campaign uses fails (the API answers 409 first).
      CREATE TABLE campaign_testcases (
        campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        testcase_id TEXT NOT NULL REFERENCES testcases(id),
        PRIMARY KEY (campaign_id, position)
      ) STRICT;
      CREATE INDEX campaign_testcases_testcase ON campaign_testcases (testcase_id);

      CREATE TABLE runs (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        campaign_id   TEXT,
        testcase_id   TEXT,
        name          TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'passed', 'failed', 'error', 'canceled', 'interrupted', 'skipped')),
        reason        TEXT,
        trigger       TEXT NOT NULL CHECK (trigger IN ('api', 'schedule')),
        requested_by  TEXT,
        spec_json     TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        started_at    TEXT,
        finished_at   TEXT,
        duration_ms   REAL
      ) STRICT;
      CREATE INDEX runs_campaign_seq ON runs (campaign_id, seq);
      CREATE INDEX runs_status_seq ON runs (status, seq);

      CREATE TABLE run_tests (
        seq          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        testcase_id  TEXT NOT NULL,
        name         TEXT NOT NULL,
        position     INTEGER NOT NULL,
        attempt      INTEGER NOT NULL,
        final        INTEGER NOT NULL DEFAULT 1,
        status       TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'error', 'canceled', 'skipped')),
        message      TEXT,
        host_id      TEXT,
        device_id    TEXT,
        lease_id     TEXT,
        started_at   TEXT,
        finished_at  TEXT,
        duration_ms  REAL
      ) STRICT;
      CREATE INDEX run_tests_run ON run_tests (run_id, position, attempt);

      CREATE TABLE run_steps (
        seq          INTEGER PRIMARY KEY,
        run_test_id  TEXT NOT NULL REFERENCES run_tests(id) ON DELETE CASCADE,
        idx          INTEGER NOT NULL,
        phase        TEXT NOT NULL CHECK (phase IN ('setup', 'main', 'teardown')),
        name         TEXT NOT NULL,
        action       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'error', 'canceled', 'skipped')),
        message      TEXT,
        action_ids_json TEXT NOT NULL DEFAULT '[]',
        result_json  TEXT,
        error_json   TEXT,
        started_at   TEXT,
        finished_at  TEXT,
        duration_ms  REAL
      ) STRICT;
      CREATE INDEX run_steps_test ON run_steps (run_test_id, idx);

      -- The leases a run holds, so a hub that died mid-run can release them at its next start.
      CREATE TABLE run_leases (
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        lease_id    TEXT NOT NULL,
        released_at TEXT,
        PRIMARY KEY (run_id, lease_id)
      ) STRICT;
      CREATE INDEX run_leases_open ON run_leases (released_at);

      CREATE TABLE run_artifacts (
        seq          INTEGER PRIMARY KEY,
        run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        run_test_id  TEXT,
        step_seq     INTEGER,
        name         TEXT NOT NULL,
        kind         TEXT NOT NULL,
        mime_type    TEXT NOT NULL,
        bytes        INTEGER NOT NULL,
        created_at   TEXT NOT NULL,
        deleted_at   TEXT,
        UNIQUE (run_id, name)
      ) STRICT;
      CREATE INDEX run_artifacts_live ON run_artifacts (deleted_at, created_at);
    `,
  },
  {
    version: 6,
    name: "actions: reconciled late results",
    // Set when an agent's result arrived after a hub restart had marked the action failed (shutting_down)
    // and replaced that failure with the real outcome.
    sql: `ALTER TABLE actions ADD COLUMN reconciled_at TEXT;`,
  },
  {
    version: 7,
    name: "hosts: index on state",
    // The presence sweep (every second) and every status or metrics read count or list the online hosts.
    sql: `CREATE INDEX hosts_state ON hosts (state);`,
  },
];
