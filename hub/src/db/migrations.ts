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
];
