//! SQLite backend (WAL).
