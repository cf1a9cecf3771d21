//! component-orchestrator through the event bus and its HTTP API, in process: the store (SQLite
//! in memory, or PostgreSQL when configured), the embedded bus, the module's workers running,
//! events published as the flow repository and the webhooks publish them.

mod api;
mod executions;
mod ferryman;
mod in_process;
mod inline;
mod lifecycle;
mod replies;
mod support;

/// Runs each named `async fn(Hub)` once per storage engine: SQLite always, PostgreSQL when
/// `OIH_TEST_DATABASE_URL` is set (each test in its own schema).
#[macro_export]
macro_rules! engines {
    ($($name:ident),* $(,)?) => {
        $crate::engines!(config = $crate::support::queued(); $($name),*);
    };
    (config = $config:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Hub::start_with($config).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(hub) = $crate::support::Hub::start_postgres_with($config).await {
                        super::$name(hub).await;
                    }
                }
            )*
        }
    };
}
