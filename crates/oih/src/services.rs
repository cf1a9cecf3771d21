//! The registry of OIH services: the only place that knows every service crate. Each service's
//! task fills in its arm of [`build`] (and IAM fills in [`authenticator`]); a service not built
//! yet contributes no routes.

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

/// What `serve` hands every service: shared infrastructure, opened once.
#[derive(Clone)]
#[allow(dead_code, reason = "read by the services as they are ported")]
pub struct ServiceContext {
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn MessageBus>,
    /// Absolute; for services that keep files (none yet).
    pub data_dir: PathBuf,
    /// All services selected in this process, so a service can tell whether a peer (e.g.
    /// IAM) runs in-process or must be reached over HTTP.
    pub selected: Vec<Service>,
}

/// Builds one service: its routes, docs, health checks and workers. `Ok(None)` while the
/// service has not been ported.
pub async fn build(
    service: Service,
    ctx: &ServiceContext,
) -> anyhow::Result<Option<ServiceModule>> {
    let _ = ctx;
    match service {
        Service::Iam
        | Service::FlowRepository
        | Service::ComponentRepository
        | Service::ComponentOrchestrator
        | Service::Webhooks
        | Service::Scheduler
        | Service::SecretService
        | Service::AuditLog
        | Service::MetaDataRepository
        | Service::IntegrationLayerService
        | Service::Snapshots => Ok(None),
    }
}

/// The token checker for every service's `Auth` extractor: IAM's own lookup when IAM runs in
/// this process, introspection over HTTP otherwise (the IAM task fills this in). `None`: no
/// service can authenticate callers yet, and an `Auth` extractor answers 500.
pub async fn authenticator(ctx: &ServiceContext) -> anyhow::Result<Option<Arc<dyn Authenticator>>> {
    let _ = ctx;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_cli_values() {
        for service in Service::ALL {
            let value = service.to_possible_value().expect("not skipped");
            assert_eq!(value.get_name(), service.name());
        }
    }
}
