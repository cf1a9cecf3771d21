//! audit-log through its HTTP API and the event bus, in process: SQLite in memory (and
//! PostgreSQL when `OIH_TEST_DATABASE_URL` is set), the embedded bus, the app as `oih serve`
//! composes it, tokens standing for OIH's test users.

mod api;
mod chain;
mod ingest;
mod retention;
mod support;

/// Runs each named `async fn(Hub)` once per storage engine: SQLite always, PostgreSQL when
/// `OIH_TEST_DATABASE_URL` is set (each test in its own schema).
#[macro_export]
macro_rules! engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::Hub::start().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(hub) = $crate::support::Hub::start_postgres().await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
    };
}
