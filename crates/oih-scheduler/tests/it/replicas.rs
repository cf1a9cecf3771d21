//! Replicas sharing one database fire each run once (OIH's scheduler has no lock and fires
//! every run once per replica).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use oih_scheduler::Config;

use crate::engines;
use crate::support::{EVERY_SECOND, Hub, flow};

engines!(two_replicas_fire_each_run_once);

async fn two_replicas_fire_each_run_once(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    hub.start_replica(Config::default()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(hub.start_flow(&flow(Some(EVERY_SECOND))).await);
    }

    let fired = hub.executions_within(Duration::from_millis(3500)).await;
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &fired {
        let flow = &event.payload["flow"];
        runs.entry(flow["_id"].as_str().expect("id").to_owned())
            .or_default()
            .push(flow["dueExecution"].as_str().expect("due").to_owned());
    }
    for id in &ids {
        let dues = runs.get(id).cloned().unwrap_or_default();
        assert!(dues.len() >= 2, "flow {id} fired {} times", dues.len());
        let distinct: BTreeSet<_> = dues.iter().collect();
        assert_eq!(distinct.len(), dues.len(), "a run fired twice: {dues:?}");
    }
    hub.shutdown().await;
}
