//! Runs missed while no scheduler ran: fired once (`once`, the default) or skipped (`skip`,
//! OIH's behaviour). Downtime is simulated by stopping the only replica, moving the flow's
//! next run into the past through the store, and starting a new replica.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use oih_scheduler::{CatchUp, Config};

use crate::engines;
use crate::support::{EVERY_SECOND, Hub, YEARLY, flow, iso_date};

engines!(
    once_fires_a_missed_run_once,
    once_collapses_many_missed_runs_into_one,
    skip_drops_missed_runs_but_fires_due_ones,
);

/// Starts a flow with `cron` on a replica that then goes down; its next run is put an hour
/// in the past. Returns the flow id and that due time.
async fn missed_run(hub: &mut Hub, cron: &str) -> (String, DateTime<Utc>) {
    let replica = hub.spawn(Config::default()).await;
    let id = hub.start_flow(&flow(Some(cron))).await;
    replica.stop().await;
    // Forget what it fired before going down.
    hub.executions_within(Duration::from_millis(200)).await;
    let missed = (Utc::now() - chrono::Duration::hours(1))
        .duration_trunc(chrono::Duration::seconds(1))
        .expect("truncate");
    hub.set_next_run_at(&id, missed).await;
    (id, missed)
}

fn skipping() -> Config {
    Config {
        scheduler_catch_up: CatchUp::Skip,
        ..Config::default()
    }
}

async fn once_fires_a_missed_run_once(mut hub: Hub) {
    let (id, missed) = missed_run(&mut hub, YEARLY).await;
    hub.start_replica(Config::default()).await;

    let run = hub.next_execution(Duration::from_secs(3)).await;
    assert_eq!(run.payload["flow"]["_id"], id.as_str());
    assert_eq!(iso_date(&run.payload["flow"]["dueExecution"]), missed);
    let fired = iso_date(&run.payload["msg"]["data"]["sheduledTimestamp"]);
    assert!(Utc::now() - fired < chrono::Duration::seconds(5));
    // The next run is next New Year's, not another catch-up.
    assert!(hub.next_run_at(&id).await > Utc::now() + chrono::Duration::hours(1));
    assert!(
        hub.executions_within(Duration::from_millis(1500))
            .await
            .is_empty()
    );
    hub.shutdown().await;
}

async fn once_collapses_many_missed_runs_into_one(mut hub: Hub) {
    // An hour of a per-second cron: 3600 missed runs.
    let (id, missed) = missed_run(&mut hub, EVERY_SECOND).await;
    let restarted = Utc::now();
    hub.start_replica(Config::default()).await;

    let fired = hub.executions_within(Duration::from_millis(2500)).await;
    let dues: Vec<DateTime<Utc>> = fired
        .iter()
        .filter(|e| e.payload["flow"]["_id"] == id.as_str())
        .map(|e| iso_date(&e.payload["flow"]["dueExecution"]))
        .collect();
    let caught_up: Vec<_> = dues.iter().filter(|due| **due < restarted).collect();
    assert_eq!(caught_up, vec![&missed], "{dues:?}");
    // Then it runs on its schedule again.
    assert!(dues.len() >= 2 && dues.len() <= 5, "{dues:?}");
    hub.shutdown().await;
}

async fn skip_drops_missed_runs_but_fires_due_ones(mut hub: Hub) {
    let (yearly, _) = missed_run(&mut hub, YEARLY).await;
    hub.start_replica(skipping()).await;
    // The missed run is passed over: the flow waits for next New Year's.
    let now = Utc::now().timestamp_millis();
    hub.wait_for_doc(&yearly, "the missed run skipped", |doc| {
        doc.and_then(|d| d["nextRunAt"].as_i64())
            .is_some_and(|next| next > now)
    })
    .await;
    assert!(
        hub.executions_within(Duration::from_millis(1500))
            .await
            .is_empty()
    );

    // Runs that are due (not missed) still fire under `skip`.
    let every_second = hub.start_flow(&flow(Some(EVERY_SECOND))).await;
    let run = hub.next_execution(Duration::from_secs(3)).await;
    assert_eq!(run.payload["flow"]["_id"], every_second.as_str());
    hub.shutdown().await;
}
