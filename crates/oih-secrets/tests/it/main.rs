//! secret-service integration tests: the HTTP API with the full app around it (SQLite store,
//! embedded bus), encryption at rest and key management, and the OIH import.

mod clients;
mod encryption;
mod events;
mod legacy;
mod oauth1_flow;
mod oauth_flow;
mod secrets_api;
mod support;

/// Runs each named `async fn(Infra) -> anyhow::Result<()>` once per storage engine: SQLite
/// always, PostgreSQL when `OIH_TEST_DATABASE_URL` is set (each test in its own schema).
#[macro_export]
macro_rules! engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::support::Infra::new().await?).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    match $crate::support::Infra::postgres().await? {
                        Some(infra) => super::$name(infra).await,
                        None => Ok(()),
                    }
                }
            )*
        }
    };
}
