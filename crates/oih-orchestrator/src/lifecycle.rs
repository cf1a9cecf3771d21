//! Starting and stopping flows (runtime.md §3.3/§3.4, event-driven instead of OIH's reconcile
//! loop): `flow.starting` resolves and prepares every node, declares the flow's topology,
//! starts a runner per node and answers `flow.started`; a node that cannot run answers
//! `flow.failed` with the reason and nothing is started. `flow.stopping` stops the runners,
//! deletes the topology and answers `flow.stopped`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use oih_bus::{BusError, EventBus, MessageBus};
use oih_core::Event;
use oih_store::StoreError;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::deployed::Deployed;
use crate::driver::{Driver, InlineStep, Runner};
use crate::model::Flow;
use crate::resolve::ComponentResolver;
use crate::topology;

pub const FLOW_STARTED: &str = "flow.started";
pub const FLOW_STOPPED: &str = "flow.stopped";
pub const FLOW_FAILED: &str = "flow.failed";

/// A flow whose runners are up.
pub struct RunningFlow {
    pub flow: Flow,
    /// A step answers webhook callers, so they wait for it (`flow.started`'s `syncReply`).
    pub sync_reply: bool,
    /// The steps whose inputs carry an `orchestratorToken`.
    pub token_steps: Vec<String>,
    /// The steps the dataflow runs in place of a queue hop, by node id.
    pub inline: HashMap<String, InlineStep>,
    cancel: CancellationToken,
    runners: Mutex<Vec<JoinHandle<()>>>,
}

impl RunningFlow {
    /// Cancels the runners and waits until they finished the messages in hand.
    async fn stop(&self) {
        self.cancel.cancel();
        let handles = std::mem::take(
            &mut *self
                .runners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for handle in handles {
            if let Err(err) = handle.await {
                tracing::warn!(flow = %self.flow.id, error = %err, "step runner ended abnormally");
            }
        }
    }
}

/// The flows this process runs, by id.
#[derive(Clone, Default)]
pub struct Registry {
    flows: Arc<RwLock<HashMap<String, Arc<RunningFlow>>>>,
}

impl Registry {
    pub fn get(&self, flow_id: &str) -> Option<Arc<RunningFlow>> {
        self.flows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(flow_id)
            .cloned()
    }

    fn insert(&self, running: RunningFlow) {
        self.flows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(running.flow.id.clone(), Arc::new(running));
    }

    fn drain(&self) -> Vec<Arc<RunningFlow>> {
        self.flows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(_, running)| running)
            .collect()
    }

    fn remove(&self, flow_id: &str) -> Option<Arc<RunningFlow>> {
        self.flows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(flow_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Deploys and tears down flows.
pub struct Lifecycle {
    pub bus: Arc<dyn MessageBus>,
    pub events: EventBus,
    pub resolver: Arc<dyn ComponentResolver>,
    pub driver: Arc<dyn Driver>,
    pub registry: Registry,
    /// The deployed flows, kept across restarts.
    pub deployed: Deployed,
    /// Parent of every runner's token: the runners stop with the module.
    pub shutdown: CancellationToken,
}

impl Lifecycle {
    pub async fn start(&self, flow: Flow) -> Result<(), LifecycleError> {
        if let Some(running) = self.registry.get(&flow.id) {
            // A redelivered `flow.starting`: the flow is already up.
            return self.publish(FLOW_STARTED, started(&running)).await;
        }
        let id = flow.id.clone();
        match self.deploy(flow).await? {
            Ok(payload) => self.publish(FLOW_STARTED, payload).await,
            Err(reason) => {
                tracing::warn!(flow = %id, %reason, "flow cannot start");
                self.publish(FLOW_FAILED, json!({"id": id, "reason": reason}))
                    .await
            }
        }
    }

    /// Deploys again the flows deployed before a restart, before any of their messages is
    /// handled. One that can no longer run (its component is gone) is failed, so the flow
    /// repository stops it.
    pub async fn restore(&self) -> Result<(), LifecycleError> {
        for flow in self.deployed.all().await? {
            if self.registry.get(&flow.id).is_some() {
                continue;
            }
            let id = flow.id.clone();
            if let Err(reason) = self.deploy(flow).await? {
                tracing::warn!(flow = %id, %reason, "deployed flow cannot run any more");
                self.deployed.remove(&id).await?;
                self.publish(FLOW_FAILED, json!({"id": id, "reason": reason}))
                    .await?;
            }
        }
        Ok(())
    }

    /// Prepares every node, declares the topology, records the flow as deployed and starts
    /// its runners; returns `flow.started`'s payload, or why the flow cannot run.
    async fn deploy(&self, flow: Flow) -> Result<Result<Value, String>, LifecycleError> {
        let runners = match self.prepare(&flow).await? {
            Ok(runners) => runners,
            Err(reason) => return Ok(Err(reason)),
        };
        let steps: Vec<&str> = flow.graph.nodes.iter().map(|n| n.id.as_str()).collect();
        topology::declare_flow(self.bus.as_ref(), &flow.id, &steps).await?;
        let sync_reply = runners.iter().any(|r| r.replies());
        // `prepare` made one runner per node, in node order.
        let token_steps = flow
            .graph
            .nodes
            .iter()
            .zip(&runners)
            .filter(|(_, runner)| runner.needs_token())
            .map(|(node, _)| node.id.clone())
            .collect();
        let inline = flow
            .graph
            .nodes
            .iter()
            .zip(&runners)
            .filter_map(|(node, runner)| Some((node.id.clone(), runner.inline()?)))
            .collect();
        // Recorded before anything runs: a flow that runs is always restored after a restart.
        self.deployed.save(&flow).await?;
        let cancel = self.shutdown.child_token();
        let handles = runners
            .into_iter()
            .map(|r| r.start(cancel.clone()))
            .collect();
        let running = RunningFlow {
            flow,
            sync_reply,
            token_steps,
            inline,
            cancel,
            runners: Mutex::new(handles),
        };
        let payload = started(&running);
        self.registry.insert(running);
        Ok(Ok(payload))
    }

    /// Every node's runner, or why the flow cannot run (naming the node).
    async fn prepare(
        &self,
        flow: &Flow,
    ) -> Result<Result<Vec<Box<dyn Runner>>, String>, StoreError> {
        if let Err(reason) = flow.graph.check() {
            return Ok(Err(reason));
        }
        let mut runners = Vec::with_capacity(flow.graph.nodes.len());
        for node in &flow.graph.nodes {
            let Some(component) = self.resolver.resolve(&node.component_id).await? else {
                return Ok(Err(format!(
                    "node {:?}: component {} not found",
                    node.id, node.component_id
                )));
            };
            let runner = match self.driver.prepare(&flow.id, node, &component) {
                Ok(runner) => runner,
                Err(why) => return Ok(Err(format!("node {:?}: {why}", node.id))),
            };
            let edges = flow.graph.targets_of(&node.id);
            if let Some(stray) = runner
                .route_targets()
                .into_iter()
                .find(|t| !edges.contains(&t.as_str()))
            {
                return Ok(Err(format!(
                    "node {:?} routes to {stray:?}, which is not one of its edges' targets",
                    node.id
                )));
            }
            runners.push(runner);
        }
        Ok(Ok(runners))
    }

    /// Stops the flow's runners (messages in hand are finished), deletes its topology and
    /// answers `flow.stopped`. A flow this process does not run (e.g. after a restart) is torn
    /// down by the node ids `steps` of the event's graph.
    pub async fn stop(&self, flow_id: &str, steps: Vec<String>) -> Result<(), LifecycleError> {
        let steps = match self.registry.remove(flow_id) {
            Some(running) => {
                running.stop().await;
                running
                    .flow
                    .graph
                    .nodes
                    .iter()
                    .map(|n| n.id.clone())
                    .collect()
            }
            None => steps,
        };
        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
        topology::delete_flow(self.bus.as_ref(), flow_id, &steps).await?;
        self.deployed.remove(flow_id).await?;
        self.publish(FLOW_STOPPED, json!({"id": flow_id})).await
    }

    /// Waits for every runner to finish its messages in hand (the module is shutting down;
    /// the topology stays, so queued messages wait for the next start).
    pub async fn shutdown(&self) {
        for running in self.registry.drain() {
            running.stop().await;
        }
    }

    async fn publish(&self, name: &str, payload: Value) -> Result<(), LifecycleError> {
        Ok(self.events.publish(Event::new(name, payload)).await?)
    }
}

/// `flow.started`: OIH's `{id}`, plus `syncReply` for the webhooks (OIH's consumers ignore it).
fn started(running: &RunningFlow) -> Value {
    json!({"id": running.flow.id, "syncReply": running.sync_reply})
}
