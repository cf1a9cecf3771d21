-- Every statement is idempotent, as in the SQLite migrations (here sqlx's advisory lock
-- already keeps concurrent migrators apart).

-- Collections created by DocStore::ensure_collection (their tables are `doc_<name>`), so that
-- purge_expired can find them all.
CREATE TABLE IF NOT EXISTS oih_collections (
    name       TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The embedded message bus: declared exchanges, queues and bindings.
CREATE TABLE IF NOT EXISTS bus_topology (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec BYTEA NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Pending messages, one row per (message, queue).
CREATE TABLE IF NOT EXISTS bus_messages (
    id             BIGINT PRIMARY KEY,
    queue          TEXT NOT NULL,
    exchange       TEXT NOT NULL,
    routing_key    TEXT NOT NULL,
    props          BYTEA NOT NULL,
    body           BYTEA NOT NULL,
    enqueued_at    BIGINT NOT NULL, -- milliseconds since the epoch
    expires_at     BIGINT,          -- milliseconds since the epoch
    delivery_count INTEGER NOT NULL DEFAULT 0
);

-- For queue purges and deletes.
CREATE INDEX IF NOT EXISTS bus_messages_queue ON bus_messages (queue);
