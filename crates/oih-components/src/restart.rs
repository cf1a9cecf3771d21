//! `POST /components/global/restart/all` answers at once and restarts in the background, one
//! component every `emitThrottle`, each started again `restartDelay` after it was stopped (as
//! OIH does). The background part is a worker, so shutdown cancels it.

use std::time::Duration;

use oih_bus::EventBus;
use oih_core::Event;
use oih_http::Worker;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::model::component::Component;
use crate::store::{COMPONENTS, Repo};

/// Restart requests waiting for the worker; more than this are refused (503).
const QUEUE: usize = 4;

/// One `restart/all` request.
#[derive(Debug)]
pub struct RestartJob {
    pub component_ids: Vec<String>,
    /// `sub` of the admin who asked (`stoppedBy` / `startedBy`).
    pub by: String,
    pub throttle: Duration,
    pub delay: Duration,
}

#[derive(Clone, Copy)]
pub enum Switch {
    Start,
    Stop,
}

impl Switch {
    pub fn event(self) -> &'static str {
        match self {
            Self::Start => "component.starting",
            Self::Stop => "component.stopping",
        }
    }

    /// The payload key naming who did it.
    pub fn by_key(self) -> &'static str {
        match self {
            Self::Start => "startedBy",
            Self::Stop => "stoppedBy",
        }
    }

    pub fn active(self) -> bool {
        matches!(self, Self::Start)
    }
}

/// Publishes a restart's event (`{_id, startedBy|stoppedBy}`) and records the new state.
async fn switch(repo: &Repo, events: &EventBus, id: &str, how: Switch, by: &str) {
    let payload = json!({"_id": id, how.by_key(): by});
    if let Err(err) = events.publish(Event::new(how.event(), payload)).await {
        tracing::warn!(component = id, error = %err, "restart: event not published");
        return;
    }
    let active = how.active();
    if let Err(err) = repo
        .modify::<Component, _>(COMPONENTS, id, |c| c.active = active)
        .await
    {
        tracing::warn!(component = id, error = %err, "restart: state not recorded");
    }
}

/// The sender handlers queue jobs on, and the worker that runs them.
pub fn worker(repo: Repo, events: EventBus) -> (mpsc::Sender<RestartJob>, Worker) {
    let (tx, mut rx) = mpsc::channel::<RestartJob>(QUEUE);
    let worker = Worker::new("component-repository-restart", move |token| async move {
        // Pending "start again" steps; dropping the set on shutdown aborts them.
        let mut starts = JoinSet::new();
        loop {
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                Some(_) = starts.join_next(), if !starts.is_empty() => {}
                job = rx.recv() => match job {
                    Some(job) => run(&repo, &events, job, &mut starts, &token).await,
                    None => {
                        token.cancelled().await;
                        return Ok(());
                    }
                },
            }
        }
    });
    (tx, worker)
}

async fn run(
    repo: &Repo,
    events: &EventBus,
    job: RestartJob,
    starts: &mut JoinSet<()>,
    token: &CancellationToken,
) {
    for (i, id) in job.component_ids.into_iter().enumerate() {
        if i > 0 {
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(job.throttle) => {}
            }
        }
        switch(repo, events, &id, Switch::Stop, &job.by).await;
        let (repo, events, by, delay) = (repo.clone(), events.clone(), job.by.clone(), job.delay);
        starts.spawn(async move {
            tokio::time::sleep(delay).await;
            switch(&repo, &events, &id, Switch::Start, &by).await;
        });
    }
}
