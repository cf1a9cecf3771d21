//! snapshots-service in process: SQLite in memory (and PostgreSQL when `OIH_TEST_DATABASE_URL`
//! is set), the embedded bus, snapshots published as steps publish them, events as the other
//! services publish them, tokens standing for OIH's users.

mod access;
mod ingest;
mod purge;
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
