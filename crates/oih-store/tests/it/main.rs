//! The store's one integration-test binary. The conformance suite is written once and run
//! against SQLite (a file in a temp dir, and in memory) and PostgreSQL (when
//! `OIH_TEST_DATABASE_URL` is set; each test gets its own schema).

mod docs;
mod filters;
mod log;
mod open;
mod support;
mod txn;

conformance!(
    docs::crud_roundtrip,
    docs::version_conflict,
    docs::duplicate_id,
    docs::unique_single_sparse,
    docs::unique_compound_nested,
    docs::ttl_expiry,
    docs::collection_names,
    docs::shared_and_reopened,
    docs::engine_and_ping,
    filters::equality_and_typing,
    filters::ranges,
    filters::exists_arrays_text,
    filters::boolean_logic_and_pseudo_paths,
    filters::malicious_input,
    filters::sort_and_page,
    txn::commit_publishes_docs_log_and_hooks,
    txn::rollback_and_drop_leave_nothing,
    txn::failed_statement_then_rollback,
    txn::concurrent_increments,
    txn::insert_many_reports_each_outcome,
    log::roundtrip,
    log::removes_counts_and_purges,
    log::large_batches,
    log::survives_reopen,
);
