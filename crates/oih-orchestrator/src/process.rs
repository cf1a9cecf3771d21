//! The `process` driver: a node whose component has a `process` distribution runs as a local
//! child process that speaks Ferryman's protocol (runtime.md §4) with the hub's RabbitMQ. The
//! child gets the environment OIH's Kubernetes driver puts into a container (§3.9, §4.2) and
//! nothing of the hub's own environment beyond [`INHERITED`], so the hub's secrets stay out
//! of it. It is restarted with a capped exponential back-off when it dies while its flow
//! runs (its unacknowledged input goes back to the queue and is redelivered), and stopped
//! with SIGTERM, then SIGKILL after a grace period, when the flow stops or the hub shuts down.
//!
//! OIH gives each step its own RabbitMQ user through the management API; here the child
//! gets the URL the hub itself uses (`RABBITMQ_URI_FLOWS`), so a process component is as
//! trusted as the hub's broker account.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::driver::{PrepareError, Runner};
use crate::model::Node;
use crate::resolve::{Distribution, ResolvedComponent};
use crate::topology::{BACKCHANNEL, ERROR_KEY, FlowNames, OUTPUT_KEY, STATE_KEY};

/// The only variables a child takes from the hub's environment (to find its interpreter and
/// libraries); anything else it needs comes from its component's `distribution.env`.
pub const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "TZ",
    "TMPDIR",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
];

/// The first pause before a restart; it doubles up to the configured cap.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(500);

/// The log target of what children write, so it can be filtered apart from the hub's own.
const CHILD_LOG: &str = "oih_orchestrator::process::child";

/// How long the log forwarders of a reaped child may still read what it wrote.
const LOG_DRAIN: Duration = Duration::from_secs(1);

/// Settings of process components (runtime.md §3.1: OIH's names where it has them).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "component-orchestrator-process")]
pub struct ProcessConfig {
    /// The RabbitMQ URL process components connect to (OIH's `RABBITMQ_URI_FLOWS`). `oih
    /// serve` hands them its own `--amqp-url` when this is not set. Process components need
    /// the hub on RabbitMQ.
    #[arg(
        long = "orchestrator-flows-amqp-url",
        env = "RABBITMQ_URI_FLOWS",
        hide_env_values = true
    )]
    pub flows_amqp_url: Option<String>,
    /// The hub's base URL as process components reach it (their `ELASTICIO_API_URI`)
    /// [default: where `oih serve` listens].
    #[arg(long = "orchestrator-self-api-uri", env = "SELF_API_URI")]
    pub api_uri: Option<String>,
    /// The Secret Service base URL handed to process components [default: <self-api-uri>/api/v1].
    #[arg(
        long = "orchestrator-secret-service-url",
        env = "SECRET_SERVICE_BASE_URL"
    )]
    pub secret_service_base_url: Option<String>,
    /// The Snapshots service base URL handed to process components [default: <self-api-uri>].
    #[arg(
        long = "orchestrator-snapshots-service-url",
        env = "SNAPSHOTS_SERVICE_BASE_URL"
    )]
    pub snapshots_service_base_url: Option<String>,
    /// `LOG_LEVEL` of process components.
    #[arg(
        long = "orchestrator-component-log-level",
        env = "COMPONENT_LOG_LEVEL",
        default_value = "info"
    )]
    pub component_log_level: String,
    /// How long a stopping process component may finish its messages in hand before it is
    /// killed.
    #[arg(
        long = "orchestrator-process-stop-grace-secs",
        env = "ORCHESTRATOR_PROCESS_STOP_GRACE_SECS",
        default_value_t = 10
    )]
    pub stop_grace_secs: u64,
    /// The longest pause before a crashed process component is restarted (the pause starts
    /// at half a second and doubles).
    #[arg(
        long = "orchestrator-process-restart-max-secs",
        env = "ORCHESTRATOR_PROCESS_RESTART_MAX_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub restart_max_secs: u64,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            flows_amqp_url: None,
            api_uri: None,
            secret_service_base_url: None,
            snapshots_service_base_url: None,
            component_log_level: "info".into(),
            stop_grace_secs: 10,
            restart_max_secs: 60,
        }
    }
}

/// The hub's API as process components reach it when nothing says otherwise.
const DEFAULT_API_URI: &str = "http://127.0.0.1:3000";

/// Runs `process` components as supervised child processes.
pub struct ProcessDriver {
    config: ProcessConfig,
    /// The hub's bus is RabbitMQ: a child cannot reach the embedded bus.
    on_rabbitmq: bool,
    /// `ELASTICIO_RABBITMQ_PREFETCH_SAILOR`.
    prefetch: u16,
}

impl ProcessDriver {
    /// `bus_backend`: the hub bus's [`oih_bus::MessageBus::backend`].
    pub fn new(config: ProcessConfig, bus_backend: &str, prefetch: u16) -> Self {
        Self {
            config,
            on_rabbitmq: bus_backend == "amqp",
            prefetch: prefetch.max(1),
        }
    }

    /// Checks the node's component and builds its child's command line and environment.
    pub fn prepare(
        &self,
        flow_id: &str,
        node: &Node,
        component: &ResolvedComponent,
    ) -> Result<Box<dyn Runner>, PrepareError> {
        let Distribution::Process(spec) = &component.distribution else {
            return Err(format!(
                "component {} is not a process component",
                component.id
            ));
        };
        if !self.on_rabbitmq {
            return Err(format!(
                "component {} runs as a process, which needs the hub on RabbitMQ (--amqp-url); \
                 this hub runs on its embedded bus",
                component.id
            ));
        }
        let Some(amqp_url) = &self.config.flows_amqp_url else {
            return Err(format!(
                "component {} runs as a process, but no RabbitMQ URL for process components is \
                 set (RABBITMQ_URI_FLOWS)",
                component.id
            ));
        };
        let Some((program, args)) = spec.command.split_first() else {
            return Err(format!(
                "component {} has no distribution.command (a non-empty array of strings)",
                component.id
            ));
        };
        let prefetch = node.prefetch()?.unwrap_or(self.prefetch);
        let env = self.environment(flow_id, &node.id, component, &spec.env, amqp_url, prefetch);
        Ok(Box::new(ProcessRunner {
            flow_id: flow_id.to_owned(),
            step_id: node.id.clone(),
            program: program.clone(),
            args: args.to_vec(),
            working_directory: spec.working_directory.clone(),
            env,
            stop_grace: Duration::from_secs(self.config.stop_grace_secs),
            restart_max: Duration::from_secs(self.config.restart_max_secs.max(1)),
        }))
    }

    /// The child's whole environment: [`INHERITED`], the distribution's `env`, the
    /// descriptor's variables prefixed, then the hub's settings, which nothing overrides (a
    /// component cannot point itself at another step's queue).
    fn environment(
        &self,
        flow_id: &str,
        step_id: &str,
        component: &ResolvedComponent,
        extra: &BTreeMap<String, String>,
        amqp_url: &str,
        prefetch: u16,
    ) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = INHERITED
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
            .collect();
        env.extend(extra.clone());
        env.extend(
            component
                .environment
                .iter()
                .map(|(k, v)| (format!("ELASTICIO_{k}"), v.clone())),
        );
        env.extend(self.ferryman_settings(flow_id, step_id, &component.id, amqp_url, prefetch));
        env.insert("LOG_LEVEL".into(), self.config.component_log_level.clone());
        env
    }

    /// The `ELASTICIO_*` settings Ferryman reads (§4.2), as OIH's orchestrator sets them.
    fn ferryman_settings(
        &self,
        flow_id: &str,
        step_id: &str,
        component_id: &str,
        amqp_url: &str,
        prefetch: u16,
    ) -> Vec<(String, String)> {
        let names = FlowNames::new(flow_id);
        let api_uri = self
            .config
            .api_uri
            .as_deref()
            .unwrap_or(DEFAULT_API_URI)
            .trim_end_matches('/');
        let secrets = self
            .config
            .secret_service_base_url
            .clone()
            .unwrap_or_else(|| format!("{api_uri}/api/v1"));
        let snapshots = self
            .config
            .snapshots_service_base_url
            .clone()
            .unwrap_or_else(|| api_uri.to_owned());
        [
            ("LISTEN_MESSAGES_ON", names.messages_queue(step_id)),
            ("NODE_EXCHANGE", names.exchange.clone()),
            ("BACKCHANNEL_EXCHANGE", BACKCHANNEL.to_owned()),
            ("OUTPUT_ROUTING_KEY", OUTPUT_KEY.to_owned()),
            ("ERROR_ROUTING_KEY", ERROR_KEY.to_owned()),
            ("STATE_ROUTING_KEY", STATE_KEY.to_owned()),
            ("SNAPSHOT_ROUTING_KEY", names.key(step_id, "snapshot")),
            ("REBOUND_ROUTING_KEY", names.key(step_id, "rebound")),
            ("AMQP_URI", amqp_url.to_owned()),
            ("COMP_ID", component_id.to_owned()),
            ("API_URI", api_uri.to_owned()),
            (
                "SECRET_SERVICE_BASE_URL",
                secrets.trim_end_matches('/').to_owned(),
            ),
            (
                "SNAPSHOTS_SERVICE_BASE_URL",
                snapshots.trim_end_matches('/').to_owned(),
            ),
            ("RABBITMQ_PREFETCH_SAILOR", prefetch.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("ELASTICIO_{k}"), v))
        .collect()
    }
}

/// One node's child process, supervised.
struct ProcessRunner {
    flow_id: String,
    step_id: String,
    program: String,
    args: Vec<String>,
    working_directory: Option<PathBuf>,
    env: BTreeMap<String, String>,
    stop_grace: Duration,
    restart_max: Duration,
}

impl Runner for ProcessRunner {
    fn route_targets(&self) -> Vec<String> {
        Vec::new()
    }

    fn replies(&self) -> bool {
        false
    }

    fn needs_token(&self) -> bool {
        true
    }

    fn start(self: Box<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.supervise(cancel))
    }
}

impl ProcessRunner {
    /// Keeps the child running until `cancel`, then stops it.
    async fn supervise(self, cancel: CancellationToken) {
        let mut delay = FIRST_RESTART_DELAY;
        while !cancel.is_cancelled() {
            let started = Instant::now();
            match self.spawn() {
                Ok(mut child) => {
                    // Read now: a reaped child has no id any more.
                    let group = child
                        .id()
                        .and_then(|id| i32::try_from(id).ok())
                        .map(Pid::from_raw);
                    let logs = self.forward_logs(&mut child);
                    let status = tokio::select! {
                        status = child.wait() => Some(status),
                        () = cancel.cancelled() => None,
                    };
                    match status {
                        Some(status) => {
                            // Whatever the child left behind in its group would consume too.
                            signal_group(group, Signal::SIGKILL);
                            self.exited(status);
                        }
                        None => self.stop(&mut child, group).await,
                    }
                    drain(logs).await;
                }
                Err(err) => tracing::error!(
                    flow = %self.flow_id,
                    step = %self.step_id,
                    program = %self.program,
                    error = %err,
                    "process component could not be started"
                ),
            }
            if cancel.is_cancelled() {
                break;
            }
            // A child that ran for a while had a good run: start counting again.
            if started.elapsed() >= self.restart_max {
                delay = FIRST_RESTART_DELAY;
            }
            tracing::warn!(
                flow = %self.flow_id,
                step = %self.step_id,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "process component restarts"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => break,
            }
            delay = (delay * 2).min(self.restart_max);
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it reaches what it started (`npm`, a
            // shell); dropped unreaped, it is killed rather than left running.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.working_directory {
            command.current_dir(dir);
        }
        let child = command.spawn()?;
        tracing::info!(
            flow = %self.flow_id,
            step = %self.step_id,
            pid = child.id(),
            "process component started"
        );
        Ok(child)
    }

    fn exited(&self, status: std::io::Result<ExitStatus>) {
        match status {
            Ok(status) => tracing::warn!(
                flow = %self.flow_id,
                step = %self.step_id,
                %status,
                "process component exited while its flow runs"
            ),
            Err(err) => tracing::error!(
                flow = %self.flow_id,
                step = %self.step_id,
                error = %err,
                "process component could not be waited for"
            ),
        }
    }

    /// SIGTERM (Ferryman then finishes its messages in hand), SIGKILL after the grace period.
    async fn stop(&self, child: &mut Child, group: Option<Pid>) {
        signal_group(group, Signal::SIGTERM);
        let status = match tokio::time::timeout(self.stop_grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(
                    flow = %self.flow_id,
                    step = %self.step_id,
                    grace_secs = self.stop_grace.as_secs(),
                    "process component did not stop in time; killed"
                );
                signal_group(group, Signal::SIGKILL);
                child.wait().await
            }
        };
        signal_group(group, Signal::SIGKILL);
        match status {
            Ok(status) => tracing::info!(
                flow = %self.flow_id,
                step = %self.step_id,
                %status,
                "process component stopped"
            ),
            Err(err) => tracing::warn!(
                flow = %self.flow_id,
                step = %self.step_id,
                error = %err,
                "process component could not be waited for"
            ),
        }
    }

    /// Copies the child's output into the hub's log, line by line, with the flow and step.
    fn forward_logs(&self, child: &mut Child) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(out) = child.stdout.take() {
            tasks.push(self.forward(out, "stdout"));
        }
        if let Some(err) = child.stderr.take() {
            tasks.push(self.forward(err, "stderr"));
        }
        tasks
    }

    fn forward(
        &self,
        stream: impl AsyncRead + Unpin + Send + 'static,
        name: &'static str,
    ) -> JoinHandle<()> {
        let (flow, step) = (self.flow_id.clone(), self.step_id.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            // Ends at end of file: once the child and its group are gone.
            while let Ok(Some(line)) = lines.next_line().await {
                log_line(&flow, &step, name, &line);
            }
        })
    }
}

/// One line of a child's output at the level it gives (Ferryman logs bunyan JSON with a
/// numeric `level`); other lines at info, or warn on stderr.
fn log_line(flow: &str, step: &str, stream: &str, line: &str) {
    let level = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("level").and_then(serde_json::Value::as_u64));
    match (level, stream) {
        (Some(50..), _) => tracing::error!(target: CHILD_LOG, flow, step, stream, "{line}"),
        (Some(40..), _) | (None, "stderr") => {
            tracing::warn!(target: CHILD_LOG, flow, step, stream, "{line}");
        }
        (Some(30..), _) | (None, _) => {
            tracing::info!(target: CHILD_LOG, flow, step, stream, "{line}");
        }
        (Some(_), _) => tracing::debug!(target: CHILD_LOG, flow, step, stream, "{line}"),
    }
}

/// Signals a child's process group (its pid: see `process_group(0)`); a group already gone
/// is fine.
fn signal_group(group: Option<Pid>, signal: Signal) {
    let Some(group) = group else {
        return;
    };
    if let Err(err) = killpg(group, signal)
        && err != nix::errno::Errno::ESRCH
    {
        tracing::warn!(%group, %signal, error = %err, "could not signal a process component");
    }
}

/// Waits for the log forwarders of a reaped child; a grandchild that escaped its group and
/// still holds the pipes open does not hold the supervisor.
async fn drain(logs: Vec<JoinHandle<()>>) {
    for mut task in logs {
        if tokio::time::timeout(LOG_DRAIN, &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::resolve::ProcessSpec;

    fn component(spec: ProcessSpec) -> ResolvedComponent {
        ResolvedComponent {
            id: "5f1ad0d2ad7a2a4e91234567".into(),
            distribution: Distribution::Process(spec),
            environment: BTreeMap::from([
                ("REBOUND_LIMIT".into(), "3".into()),
                ("LISTEN_MESSAGES_ON".into(), "someone-elses-queue".into()),
            ]),
        }
    }

    fn node(id: &str) -> Node {
        serde_json::from_value(json!({"id": id, "componentId": "c", "function": "f"}))
            .expect("node")
    }

    fn driver(backend: &str) -> ProcessDriver {
        let config = ProcessConfig {
            flows_amqp_url: Some("amqp://u:p@rabbit/%2f".into()),
            api_uri: Some("http://hub:3000/".into()),
            ..ProcessConfig::default()
        };
        ProcessDriver::new(config, backend, 2)
    }

    #[test]
    fn the_child_gets_ferrymans_settings_and_nothing_else_of_the_hub() {
        let driver = driver("amqp");
        let extra = BTreeMap::from([
            (
                "NODE_OPTIONS".to_owned(),
                "--max-old-space-size=128".to_owned(),
            ),
            (
                "ELASTICIO_AMQP_URI".to_owned(),
                "amqp://elsewhere".to_owned(),
            ),
        ]);
        let component = component(ProcessSpec::default());
        let env = driver.environment(
            "f1",
            "step_2",
            &component,
            &extra,
            "amqp://u:p@rabbit/%2f",
            2,
        );
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(
            get("ELASTICIO_LISTEN_MESSAGES_ON"),
            Some("flow-f1:step_2:messages")
        );
        assert_eq!(get("ELASTICIO_NODE_EXCHANGE"), Some("flow-f1"));
        assert_eq!(get("ELASTICIO_BACKCHANNEL_EXCHANGE"), Some(BACKCHANNEL));
        assert_eq!(get("ELASTICIO_OUTPUT_ROUTING_KEY"), Some(OUTPUT_KEY));
        assert_eq!(get("ELASTICIO_ERROR_ROUTING_KEY"), Some(ERROR_KEY));
        assert_eq!(get("ELASTICIO_STATE_ROUTING_KEY"), Some(STATE_KEY));
        assert_eq!(
            get("ELASTICIO_SNAPSHOT_ROUTING_KEY"),
            Some("flow-f1.step_2.snapshot")
        );
        assert_eq!(
            get("ELASTICIO_REBOUND_ROUTING_KEY"),
            Some("flow-f1.step_2.rebound")
        );
        assert_eq!(get("ELASTICIO_AMQP_URI"), Some("amqp://u:p@rabbit/%2f"));
        assert_eq!(get("ELASTICIO_COMP_ID"), Some("5f1ad0d2ad7a2a4e91234567"));
        assert_eq!(get("ELASTICIO_API_URI"), Some("http://hub:3000"));
        assert_eq!(
            get("ELASTICIO_SECRET_SERVICE_BASE_URL"),
            Some("http://hub:3000/api/v1")
        );
        assert_eq!(
            get("ELASTICIO_SNAPSHOTS_SERVICE_BASE_URL"),
            Some("http://hub:3000")
        );
        assert_eq!(get("ELASTICIO_RABBITMQ_PREFETCH_SAILOR"), Some("2"));
        assert_eq!(get("LOG_LEVEL"), Some("info"));
        // The component's own settings, prefixed like OIH's; but not over the hub's.
        assert_eq!(get("ELASTICIO_REBOUND_LIMIT"), Some("3"));
        assert_eq!(get("NODE_OPTIONS"), Some("--max-old-space-size=128"));
        // From the hub's environment only the allow-list (the test runner has more).
        let ours = |k: &String| {
            k.starts_with("ELASTICIO_")
                || k == "LOG_LEVEL"
                || k == "NODE_OPTIONS"
                || INHERITED.contains(&k.as_str())
        };
        assert!(env.keys().all(ours), "{env:?}");
        assert!(std::env::var_os("CARGO").is_some() && !env.contains_key("CARGO"));
    }

    #[test]
    fn process_components_need_rabbitmq_and_a_command() {
        let spec = ProcessSpec {
            command: vec!["node".into()],
            ..ProcessSpec::default()
        };
        let reason = driver("embedded")
            .prepare("f1", &node("step_2"), &component(spec.clone()))
            .err()
            .expect("embedded bus refused");
        assert!(reason.contains("RabbitMQ"), "{reason}");
        let reason = driver("amqp")
            .prepare("f1", &node("step_2"), &component(ProcessSpec::default()))
            .err()
            .expect("no command refused");
        assert!(reason.contains("distribution.command"), "{reason}");
        let mut no_url = driver("amqp");
        no_url.config.flows_amqp_url = None;
        let reason = no_url
            .prepare("f1", &node("step_2"), &component(spec.clone()))
            .err()
            .expect("no URL refused");
        assert!(reason.contains("RABBITMQ_URI_FLOWS"), "{reason}");
        let runner = driver("amqp")
            .prepare("f1", &node("step_2"), &component(spec))
            .expect("prepared");
        assert!(runner.needs_token());
    }

    /// A runner of `sh -c script` in `dir`, restarting quickly.
    fn shell(dir: &Path, script: &str) -> Box<ProcessRunner> {
        Box::new(ProcessRunner {
            flow_id: "f1".into(),
            step_id: "step_1".into(),
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            working_directory: Some(dir.to_owned()),
            env: BTreeMap::from([("PATH".to_owned(), std::env::var("PATH").unwrap_or_default())]),
            stop_grace: Duration::from_secs(5),
            restart_max: Duration::from_secs(1),
        })
    }

    async fn lines(path: &Path, at_least: usize) -> Vec<String> {
        let wait = async {
            loop {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                if lines.len() >= at_least {
                    return lines;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("the process wrote in time")
    }

    #[tokio::test]
    async fn a_dying_process_is_restarted_until_the_flow_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cancel = CancellationToken::new();
        let task = shell(dir.path(), "echo run >> runs; exit 3").start(cancel.clone());
        lines(&dir.path().join("runs"), 3).await;
        cancel.cancel();
        // The supervisor ends, between two runs or by stopping the current one.
        task.await.expect("supervisor ended");
    }

    #[tokio::test]
    async fn stopping_sends_sigterm_and_waits_for_the_process() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = "trap 'echo terminated >> log; exit 0' TERM; echo up >> log; \
                      while true; do sleep 0.05; done";
        let cancel = CancellationToken::new();
        let task = shell(dir.path(), script).start(cancel.clone());
        lines(&dir.path().join("log"), 1).await;
        cancel.cancel();
        task.await.expect("supervisor ended");
        assert_eq!(
            lines(&dir.path().join("log"), 2).await,
            ["up", "terminated"]
        );
    }

    #[tokio::test]
    async fn a_process_ignoring_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut runner = shell(
            dir.path(),
            "trap '' TERM; echo $$ > pid; while true; do sleep 0.05; done",
        );
        runner.stop_grace = Duration::from_millis(200);
        let cancel = CancellationToken::new();
        let task = runner.start(cancel.clone());
        let pid: i32 = lines(&dir.path().join("pid"), 1).await[0]
            .parse()
            .expect("pid");
        cancel.cancel();
        task.await.expect("supervisor ended");
        // Reaped and gone: no such process any more.
        assert_eq!(
            nix::sys::signal::kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
    }
}
