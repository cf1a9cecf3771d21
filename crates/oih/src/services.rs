//! The registry of OIH services: the only place that knows every service crate. Each service
//! has its arm in [`build`]; IAM also supplies the token checker the others use.

use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use oih_bus::MessageBus;
use oih_http::{Authenticator, ServiceModule};
use oih_store::DocStore;

/// OIH's service names, as `--only` takes them.
#[allow(clippy::enum_variant_names, reason = "OIH's own names end in -service")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Service {
    Iam,
    FlowRepository,
    ComponentRepository,
    ComponentOrchestrator,
    Webhooks,
    Scheduler,
    SecretService,
    AuditLog,
    MetaDataRepository,
    IntegrationLayerService,
    Snapshots,
}

impl Service {
    pub const ALL: [Service; 11] = [
        Service::Iam,
        Service::FlowRepository,
        Service::ComponentRepository,
        Service::ComponentOrchestrator,
        Service::Webhooks,
        Service::Scheduler,
        Service::SecretService,
        Service::AuditLog,
        Service::MetaDataRepository,
        Service::IntegrationLayerService,
        Service::Snapshots,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Iam => "iam",
            Service::FlowRepository => "flow-repository",
            Service::ComponentRepository => "component-repository",
            Service::ComponentOrchestrator => "component-orchestrator",
            Service::Webhooks => "webhooks",
            Service::Scheduler => "scheduler",
            Service::SecretService => "secret-service",
            Service::AuditLog => "audit-log",
            Service::MetaDataRepository => "meta-data-repository",
            Service::IntegrationLayerService => "integration-layer-service",
            Service::Snapshots => "snapshots",
        }
    }
}

/// Each service's own settings, flattened into `oih serve`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfigs {
    #[command(flatten, next_help_heading = "IAM")]
    pub iam: oih_iam::Config,
    #[command(
        flatten,
        next_help_heading = "Authentication when IAM runs in another process (--only without iam)"
    )]
    pub introspection: oih_iam::IntrospectionConfig,
    #[command(flatten, next_help_heading = "Flow Repository")]
    pub flows: oih_flows::Config,
    #[command(flatten, next_help_heading = "Component Repository")]
    pub components: oih_components::Config,
    #[command(flatten, next_help_heading = "Secret Service")]
    pub secrets: oih_secrets::Config,
    #[command(flatten, next_help_heading = "Audit Log")]
    pub audit: oih_audit::Config,
    #[command(flatten, next_help_heading = "Component Orchestrator")]
    pub orchestrator: oih_orchestrator::Config,
    #[command(flatten, next_help_heading = "Webhooks")]
    pub webhooks: oih_webhooks::Config,
    #[command(flatten, next_help_heading = "Scheduler")]
    pub scheduler: oih_scheduler::Config,
    #[command(flatten, next_help_heading = "Meta Data Repository")]
    pub metadata: oih_metadata::Config,
    #[command(flatten, next_help_heading = "Integration Layer Service")]
    pub ils: oih_ils::Config,
    #[command(flatten, next_help_heading = "Snapshots")]
    pub snapshots: oih_snapshots::Config,
}

/// What `serve` hands every service: shared infrastructure, opened once.
#[derive(Clone)]
pub struct ServiceContext {
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn MessageBus>,
    /// Absolute; where services keep local files (the generated master key).
    pub data_dir: PathBuf,
    /// Refuse insecure defaults (e.g. a generated master key).
    pub production: bool,
    /// The services of this process, so a service can call a peer in process (the ILS reads
    /// the Meta Data Repository's schemas) instead of over HTTP.
    pub selected: Vec<Service>,
    pub configs: ServiceConfigs,
    /// IAM's password checks once IAM is built in this process (it is built first), for
    /// Basic credentials on webhooks.
    pub iam_logins: Arc<std::sync::OnceLock<oih_iam::PasswordLogins>>,
    /// The orchestrator's door for the webhooks, once it is built in this process (before
    /// the webhooks).
    pub in_process: Arc<std::sync::OnceLock<Arc<dyn oih_webhooks::InProcess>>>,
    /// Signs and checks step tokens (the orchestrator signs, the edge checks).
    pub step_tokens: Arc<oih_http::step_token::StepTokens>,
}

/// A started service, and the token checker it offers the others (IAM only).
pub struct BuiltService {
    pub module: ServiceModule,
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

impl From<ServiceModule> for BuiltService {
    fn from(module: ServiceModule) -> Self {
        Self {
            module,
            authenticator: None,
        }
    }
}

/// Builds one service: its routes, docs, health checks and workers.
pub async fn build(service: Service, ctx: &ServiceContext) -> anyhow::Result<BuiltService> {
    let (docs, bus) = (ctx.docs.clone(), ctx.bus.clone());
    let built = match service {
        Service::Iam => {
            let iam = oih_iam::module(ctx.configs.iam.clone(), oih_iam::Deps { docs, bus }).await?;
            // Built once per process; a second set would be the same checks.
            let _ = ctx.iam_logins.set(iam.logins);
            BuiltService {
                module: iam.module,
                authenticator: Some(iam.authenticator),
            }
        }
        Service::FlowRepository => {
            oih_flows::module(ctx.configs.flows.clone(), oih_flows::Deps { docs, bus })
                .await?
                .into()
        }
        Service::ComponentRepository => {
            let mut config = ctx.configs.components.clone();
            config.builtins = builtin_catalogue()?;
            let deps = oih_components::Deps { docs, bus };
            oih_components::module(config, deps).await?.into()
        }
        Service::Scheduler => {
            let deps = oih_scheduler::Deps { docs, bus };
            oih_scheduler::module(ctx.configs.scheduler.clone(), deps)
                .await?
                .into()
        }
        Service::SecretService => {
            oih_secrets::module(secrets_config(ctx), oih_secrets::Deps { docs, bus })
                .await?
                .into()
        }
        Service::ComponentOrchestrator => {
            // Builtin components only for now: their ids are derived from their names, so no
            // read of the Component Repository's tables is needed.
            // Registered components are read from the Component Repository in this process;
            // without it only the builtin catalogue can run.
            let components: Arc<dyn oih_orchestrator::ComponentResolver> =
                if ctx.selected.contains(&Service::ComponentRepository) {
                    let reader = oih_components::ComponentReader::open(docs.clone()).await?;
                    Arc::new(oih_orchestrator::RepositoryResolver::new(Arc::new(
                        RepositoryComponents(reader),
                    )))
                } else {
                    Arc::new(oih_orchestrator::BuiltinIdResolver::new())
                };
            // The snapshots service of this process is told of finished executions directly.
            let snapshots: Option<Arc<dyn oih_orchestrator::FinishedExecutions>> =
                if ctx.selected.contains(&Service::Snapshots) {
                    let purge = oih_snapshots::ExecutionPurge::open(docs.clone()).await?;
                    Some(Arc::new(SnapshotsHere(purge)))
                } else {
                    None
                };
            let deps = oih_orchestrator::Deps {
                docs,
                bus,
                components,
                http: step_http_client()?,
                step_tokens: ctx.step_tokens.clone(),
                snapshots,
            };
            let built = oih_orchestrator::module(ctx.configs.orchestrator.clone(), deps).await?;
            // Built before the webhooks (`Service::ALL` order), which take it.
            let _ = ctx
                .in_process
                .set(Arc::new(InProcessOrchestrator(built.in_process)));
            built.module.into()
        }
        Service::MetaDataRepository => {
            let deps = oih_metadata::Deps { docs, bus };
            oih_metadata::module(ctx.configs.metadata.clone(), deps)
                .await?
                .into()
        }
        Service::IntegrationLayerService => {
            let config = ctx.configs.ils.clone();
            let schemas: Arc<dyn oih_ils::SchemaSource> =
                if ctx.selected.contains(&Service::MetaDataRepository) {
                    Arc::new(InProcessSchemas(
                        oih_metadata::SchemaReader::open(docs.clone()).await?,
                    ))
                } else {
                    Arc::new(config.http_schema_source()?)
                };
            oih_ils::module(config, oih_ils::Deps { docs, schemas })
                .await?
                .into()
        }
        Service::Webhooks => {
            let hmac: Arc<dyn oih_webhooks::HmacVerifier> =
                if ctx.selected.contains(&Service::SecretService) {
                    Arc::new(SecretsHmac(
                        oih_secrets::WebhookHmac::open(&secrets_config(ctx), docs.clone()).await?,
                    ))
                } else {
                    Arc::new(NoSecretService)
                };
            // Basic credentials are checked by IAM in this process; without it they are refused.
            let login = ctx.iam_logins.get().map(|logins| {
                Arc::new(IamLogin(logins.clone())) as Arc<dyn oih_webhooks::PasswordLogin>
            });
            let deps = oih_webhooks::Deps {
                docs,
                bus,
                hmac,
                login,
                in_process: ctx.in_process.get().cloned(),
            };
            oih_webhooks::module(ctx.configs.webhooks.clone(), deps)
                .await?
                .into()
        }
        Service::AuditLog => {
            oih_audit::module(ctx.configs.audit.clone(), oih_audit::Deps { docs, bus })
                .await?
                .into()
        }
        Service::Snapshots => {
            let deps = oih_snapshots::Deps { docs, bus };
            // The orchestrator of this process purges finished executions itself.
            let finished = if ctx.selected.contains(&Service::ComponentOrchestrator) {
                oih_snapshots::Finished::BesideOrchestrator
            } else {
                oih_snapshots::Finished::FromEvents
            };
            oih_snapshots::module(ctx.configs.snapshots.clone(), deps, finished)
                .await?
                .into()
        }
    };
    Ok(built)
}

/// The HTTP client builtin steps (http-request) use: one pool for the whole hub.
fn step_http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .user_agent(concat!("oih/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The Secret Service's settings, completed with the hub-wide ones.
fn secrets_config(ctx: &ServiceContext) -> oih_secrets::Config {
    let mut config = ctx.configs.secrets.clone();
    config.data_dir = ctx.data_dir.clone();
    config.production = ctx.production;
    config
}

/// Webhook signatures checked by the Secret Service of this process, as the flow's starter.
struct SecretsHmac(oih_secrets::WebhookHmac);

#[async_trait::async_trait]
impl oih_webhooks::HmacVerifier for SecretsHmac {
    async fn verify(
        &self,
        owner: &oih_core::Identity,
        secret_id: &str,
        algorithm: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<bool, oih_http::BoxError> {
        Ok(self
            .0
            .verify(owner, secret_id, algorithm, body, signature)
            .await?)
    }
}

/// The Component Repository of this process, as the orchestrator reads components.
struct RepositoryComponents(oih_components::ComponentReader);

#[async_trait::async_trait]
impl oih_orchestrator::ComponentDocuments for RepositoryComponents {
    async fn component(
        &self,
        id: &str,
    ) -> Result<Option<serde_json::Value>, oih_store::StoreError> {
        self.0.component(id).await
    }
}

/// The webhooks start executions of flows this process runs with its orchestrator.
struct InProcessOrchestrator(oih_orchestrator::InProcess);

#[async_trait::async_trait]
impl oih_webhooks::InProcess for InProcessOrchestrator {
    async fn execute(
        &self,
        flow_id: &str,
        msg: serde_json::Value,
        reply_to: &str,
    ) -> Result<oih_webhooks::Ran, oih_webhooks::InProcessError> {
        match self.0.execute(flow_id, msg, reply_to.to_owned()).await {
            Ok(oih_orchestrator::Local::Ran(answers)) => Ok(oih_webhooks::Ran::Here(answers)),
            Ok(oih_orchestrator::Local::NotHere(msg)) => Ok(oih_webhooks::Ran::NotHere(msg)),
            Err(err) => Err(oih_webhooks::InProcessError(err.to_string())),
        }
    }
}

/// The orchestrator purges the snapshots of finished executions in this process.
struct SnapshotsHere(oih_snapshots::ExecutionPurge);

#[async_trait::async_trait]
impl oih_orchestrator::FinishedExecutions for SnapshotsHere {
    async fn purge(&self, flow_exec_id: &str) -> Result<(), String> {
        self.0
            .purge(flow_exec_id)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Basic credentials on webhooks, checked by IAM in this process.
struct IamLogin(oih_iam::PasswordLogins);

#[async_trait::async_trait]
impl oih_webhooks::PasswordLogin for IamLogin {
    async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<oih_core::Identity>, oih_http::BoxError> {
        Ok(self.0.login(username, password).await?)
    }
}

/// Webhooks running without the Secret Service in their process cannot check signatures:
/// a flow protected by an HMAC answers 503 (and is logged) rather than being let through.
struct NoSecretService;

#[async_trait::async_trait]
impl oih_webhooks::HmacVerifier for NoSecretService {
    async fn verify(
        &self,
        _: &oih_core::Identity,
        _: &str,
        _: &str,
        _: &[u8],
        _: &str,
    ) -> Result<bool, oih_http::BoxError> {
        Err("HMAC-protected webhooks need the secret-service in the same process (add it to --only)".into())
    }
}

/// The ILS's schemas read straight from the Meta Data Repository running in this process,
/// with the caller's rights: the same answer as over HTTP, without the round trip.
struct InProcessSchemas(oih_metadata::SchemaReader);

#[async_trait::async_trait]
impl oih_ils::SchemaSource for InProcessSchemas {
    async fn schema(
        &self,
        domain_id: &str,
        schema_uri: &str,
        caller: &oih_ils::Caller,
    ) -> Result<Option<serde_json::Value>, oih_ils::SchemaError> {
        self.0
            .read(&caller.identity, domain_id, schema_uri)
            .await
            .map_err(|e| oih_ils::SchemaError::Unavailable(e.to_string()))
    }
}

/// The runtime's builtin components as Component Repository entries, so flows can reference
/// them by id. The two crates do not know each other; their JSON shapes agree.
fn builtin_catalogue() -> anyhow::Result<Vec<oih_components::BuiltinDescriptor>> {
    oih_runtime::catalogue()
        .descriptors()
        .into_iter()
        .map(|d| Ok(serde_json::from_value(serde_json::to_value(d)?)?))
        .collect()
}

/// The token checker when IAM does not run in this process: OIH's introspection endpoint
/// (`INTROSPECT_ENDPOINT_BASIC`, with local JWT verification when keys are configured).
pub fn remote_authenticator(ctx: &ServiceContext) -> anyhow::Result<Arc<dyn Authenticator>> {
    let authenticator: Arc<dyn Authenticator> =
        oih_iam::IntrospectionAuthenticator::new(&ctx.configs.introspection)?;
    Ok(authenticator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_component_is_listed_by_the_component_repository() {
        let listed = builtin_catalogue().expect("runtime descriptors convert");
        let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "webhook",
                "scheduler",
                "http-request",
                "jsonata",
                "filter",
                "router",
                "splitter",
                "webhook-reply",
                "log",
                "noop"
            ]
        );
        assert!(
            listed
                .iter()
                .all(|d| !d.triggers.is_empty() || !d.actions.is_empty())
        );
    }

    #[test]
    fn names_match_the_cli_values() {
        for service in Service::ALL {
            let value = service.to_possible_value().expect("not skipped");
            assert_eq!(value.get_name(), service.name());
        }
    }
}
