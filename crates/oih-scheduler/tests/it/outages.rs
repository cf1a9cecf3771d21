//! A database that is briefly away delays events and runs; it loses neither.

use std::sync::atomic::Ordering;
use std::time::Duration;

use oih_scheduler::Config;

use crate::support::{EVERY_SECOND, Hub, flow};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outages_delay_events_and_runs_without_losing_them() {
    let (mut hub, flaky) = Hub::sqlite_flaky().await;
    hub.start_replica(Config::default()).await;
    let flow = flow(Some(EVERY_SECOND));
    let id = flow["id"].as_str().expect("id").to_owned();

    // Neither flow.starting nor flow.started can be written at first: both are retried.
    flaky.fail_updates.store(2, Ordering::SeqCst);
    hub.starting(&flow).await;
    hub.wait_for_doc(&id, "the flow to be remembered", |doc| doc.is_some())
        .await;
    assert_eq!(flaky.fail_updates.load(Ordering::SeqCst), 0);
    flaky.fail_updates.store(2, Ordering::SeqCst);
    hub.started(&id).await;
    hub.next_run_at(&id).await;
    assert_eq!(flaky.fail_updates.load(Ordering::SeqCst), 0);
    hub.next_execution(Duration::from_secs(3)).await;

    // Claiming runs fails for a while: they are fired late, not lost.
    flaky.fail_updates.store(2, Ordering::SeqCst);
    for _ in 0..100 {
        if flaky.fail_updates.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        flaky.fail_updates.load(Ordering::SeqCst),
        0,
        "the loop stopped claiming runs"
    );
    hub.executions_within(Duration::from_millis(100)).await;
    let run = hub.next_execution(Duration::from_secs(3)).await;
    assert_eq!(run.payload["flow"]["_id"], id.as_str());
    assert_eq!(hub.queue_len("scheduler.deadletter").await, 0);
    hub.shutdown().await;
}
