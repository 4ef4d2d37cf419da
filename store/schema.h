#pragma once

namespace svcbox::store {

// Migration N takes a registry from user_version N to N+1. Never edit a shipped migration:
// append a new one and raise kSchemaVersion.
inline constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('generation', 0);

CREATE TABLE services (
  id               INTEGER PRIMARY KEY,
  namespace        TEXT NOT NULL,
  name             TEXT NOT NULL,
  type             TEXT NOT NULL CHECK (type IN ('ClusterIP', 'ExternalName')),
  external_name    TEXT NOT NULL,
  headless         INTEGER NOT NULL CHECK (headless IN (0, 1)),
  cluster_ip       TEXT UNIQUE,
  selector         TEXT,
  session_affinity TEXT NOT NULL CHECK (session_affinity IN ('None', 'ClientIP')),
  affinity_timeout INTEGER NOT NULL,
  created_ms       INTEGER NOT NULL,
  revision         INTEGER NOT NULL,
  UNIQUE (namespace, name)
);

CREATE TABLE service_ports (
  service_id       INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
  idx              INTEGER NOT NULL,
  name             TEXT NOT NULL,
  protocol         TEXT NOT NULL CHECK (protocol IN ('TCP', 'UDP')),
  port             INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  target_port      INTEGER NOT NULL CHECK (target_port BETWEEN 0 AND 65535),
  target_port_name TEXT NOT NULL,
  PRIMARY KEY (service_id, idx)
) WITHOUT ROWID;

CREATE TABLE pods (
  id                  INTEGER PRIMARY KEY,
  namespace           TEXT NOT NULL,
  name                TEXT NOT NULL,
  labels              TEXT NOT NULL,
  ips                 TEXT NOT NULL,
  container_count     INTEGER NOT NULL,
  hostname            TEXT NOT NULL,
  subdomain           TEXT NOT NULL,
  probe_kind          TEXT CHECK (probe_kind IN ('tcpSocket', 'httpGet')),
  probe_port          INTEGER NOT NULL,
  probe_port_name     TEXT NOT NULL,
  probe_path          TEXT NOT NULL,
  probe_scheme        TEXT NOT NULL,
  probe_initial_delay INTEGER NOT NULL,
  probe_period        INTEGER NOT NULL,
  probe_timeout       INTEGER NOT NULL,
  probe_success       INTEGER NOT NULL,
  probe_failure       INTEGER NOT NULL,
  ready               INTEGER NOT NULL CHECK (ready IN (0, 1)),
  ready_reason        TEXT NOT NULL,
  ready_changed_ms    INTEGER NOT NULL,
  created_ms          INTEGER NOT NULL,
  revision            INTEGER NOT NULL,
  UNIQUE (namespace, name)
);

-- Covering indexes for the snapshot's scan of (id, revision) in name order.
CREATE INDEX services_by_name ON services (namespace, name, revision);
CREATE INDEX pods_by_name ON pods (namespace, name, revision);

CREATE TABLE pod_ports (
  pod_id         INTEGER NOT NULL REFERENCES pods (id) ON DELETE CASCADE,
  idx            INTEGER NOT NULL,
  container      TEXT NOT NULL,
  name           TEXT NOT NULL,
  container_port INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
  protocol       TEXT NOT NULL CHECK (protocol IN ('TCP', 'UDP')),
  PRIMARY KEY (pod_id, idx)
) WITHOUT ROWID;

CREATE TABLE endpoint_sets (
  id           INTEGER PRIMARY KEY,
  kind         TEXT NOT NULL CHECK (kind IN ('Endpoints', 'EndpointSlice')),
  namespace    TEXT NOT NULL,
  name         TEXT NOT NULL,
  service_name TEXT NOT NULL,
  created_ms   INTEGER NOT NULL,
  UNIQUE (kind, namespace, name)
);

CREATE TABLE endpoint_addresses (
  set_id     INTEGER NOT NULL REFERENCES endpoint_sets (id) ON DELETE CASCADE,
  grp        INTEGER NOT NULL,
  idx        INTEGER NOT NULL,
  ip         TEXT NOT NULL,
  ready      INTEGER NOT NULL CHECK (ready IN (0, 1)),
  hostname   TEXT NOT NULL,
  target_pod TEXT NOT NULL,
  PRIMARY KEY (set_id, grp, idx)
) WITHOUT ROWID;

CREATE TABLE endpoint_ports (
  set_id   INTEGER NOT NULL REFERENCES endpoint_sets (id) ON DELETE CASCADE,
  grp      INTEGER NOT NULL,
  idx      INTEGER NOT NULL,
  name     TEXT NOT NULL,
  port     INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  protocol TEXT NOT NULL CHECK (protocol IN ('TCP', 'UDP')),
  PRIMARY KEY (set_id, grp, idx)
) WITHOUT ROWID;
)sql",
    // Every write sets `revision` to the generation it makes: a rebuild finds the rows written
    // since its previous one without scanning the table.
    R"sql(
CREATE INDEX services_by_revision ON services (revision);
CREATE INDEX pods_by_revision ON pods (revision);
)sql",
    // The registry's identity: serve checks that the file at its path still holds this one, so a
    // file deleted, replaced or copied over under it is noticed (a random version-4 UUID).
    R"sql(
INSERT INTO meta (key, value)
SELECT 'registry_uuid', substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) ||
                        '-' || substr('89ab', 1 + abs(random() % 4), 1) || substr(h, 18, 3) ||
                        '-' || substr(h, 21, 12)
FROM (SELECT lower(hex(randomblob(16))) AS h);
)sql",
};

inline constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);

}  // namespace svcbox::store
