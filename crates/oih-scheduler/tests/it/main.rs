//! The scheduler through the event bus, in process: one store (SQLite in memory, or a
//! PostgreSQL schema), the embedded bus, scheduler replicas as `oih serve` runs them, and a
//! queue standing for the orchestrator on `flow.execute`. Crons fire every second, so the
//! tests finish in seconds; timing assertions are generous.

mod catch_up;
mod firing;
mod lifecycle;
mod outages;
mod replicas;
mod support;

/// Runs each named `async fn(Hub)` once per storage engine: SQLite always, PostgreSQL when
/// `OIH_TEST_DATABASE_URL` is set (each test in its own schema).
#[macro_export]
macro_rules! engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Hub::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::support::Hub::postgres().await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
    };
}
