//! PostgreSQL backend (JSONB).
