//! How long the current call may still take. The gRPC layer scopes each call
//! with its caller's deadline (`grpc-timeout`); work that outlives it (a backup
//! streaming, a stored copy being verified) runs as a task, and the call waits
//! for that task only while it can still answer in time — then it answers
//! "in progress" with what the task has done so far.

use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `call` with `deadline` as the caller's deadline (none: the call may wait its longest).
pub async fn within<F: Future>(deadline: Option<Instant>, call: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, call).await,
        None => call.await,
    }
}

/// How long the current call may wait for a task, at most `longest`: what is left of its
/// deadline less a margin for what the call does after the wait (recording where the task is,
/// releasing the cluster's lock) and for the answer to travel: a third, at least 700 ms. Half a
/// second was once too little on a loaded 2-core machine (a 1 s call answered after 1.06 s).
pub fn wait_for_task(longest: Duration) -> Duration {
    let now = Instant::now();
    match DEADLINE.try_with(|d| d.saturating_duration_since(now)) {
        Ok(left) => decide_wait(left, longest),
        Err(_) => longest,
    }
}

/// The wait for `left` of a deadline: pure, for tests.
fn decide_wait(left: Duration, longest: Duration) -> Duration {
    let margin = (left / 3).max(Duration::from_millis(700));
    left.saturating_sub(margin).min(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_leave_a_margin_and_never_exceed_the_longest() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(decide_wait(s(30), s(20)), s(20));
        assert_eq!(decide_wait(s(3), s(20)), s(2));
        assert_eq!(decide_wait(ms(1200), s(20)), ms(500));
        assert_eq!(decide_wait(ms(600), s(20)), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_scoped_deadline_bounds_the_wait() {
        let s = Duration::from_secs;
        assert_eq!(wait_for_task(s(20)), s(20), "no deadline: the longest");
        let waited = within(Some(Instant::now() + s(2)), async { wait_for_task(s(20)) }).await;
        assert!(waited <= Duration::from_millis(1500) && waited > s(1), "{waited:?}");
        // A task spawned from the call does not inherit the deadline.
        let spawned = within(Some(Instant::now() + s(2)), async {
            tokio::spawn(async { wait_for_task(Duration::from_secs(20)) }).await.unwrap()
        })
        .await;
        assert_eq!(spawned, s(20));
    }
}
