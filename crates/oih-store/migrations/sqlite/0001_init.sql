-- Every statement is idempotent: SQLite has no migration lock, so processes opening a new
-- file at the same moment may both run this; the store then retries and finds it recorded.

-- Collections created by DocStore::ensure_collection (their tables are `doc_<name>`), so that
-- purge_expired can find them all.
CREATE TABLE IF NOT EXISTS oih_collections (
    name       TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL -- microseconds since the epoch
);

-- The embedded message bus: declared exchanges, queues and bindings.
CREATE TABLE IF NOT EXISTS bus_topology (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec BLOB NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

-- Pending messages, one row per (message, queue). `id` is INTEGER PRIMARY KEY so it aliases
-- the rowid: inserts in id order append to the B-tree and deletes by id need no extra index.
CREATE TABLE IF NOT EXISTS bus_messages (
    id             INTEGER PRIMARY KEY NOT NULL,
    queue          TEXT NOT NULL,
    exchange       TEXT NOT NULL,
    routing_key    TEXT NOT NULL,
    props          BLOB NOT NULL,
    body           BLOB NOT NULL,
    enqueued_at    INTEGER NOT NULL, -- milliseconds since the epoch
    expires_at     INTEGER,          -- milliseconds since the epoch
    delivery_count INTEGER NOT NULL DEFAULT 0
);

-- For queue purges and deletes.
CREATE INDEX IF NOT EXISTS bus_messages_queue ON bus_messages (queue);
