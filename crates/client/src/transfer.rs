//! How far a long transfer has come, published as it goes so that whoever
//! runs it can report progress without waiting for the end.

/// Bytes moved so far, and in all when the other side says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Bytes moved so far.
    pub bytes: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

/// Where a transfer publishes its progress (the latest value wins).
pub type Progress = tokio::sync::watch::Sender<Transferred>;

/// A pause between chunks, set by tests (failpoint `transfer::chunk`, `return(ms)`) to make a
/// transfer of a small database last longer than a call's deadline. Asynchronous, so the
/// runtime goes on meanwhile.
pub async fn test_pace() {
    if let Some(ms) = test_delay_ms() {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

fn test_delay_ms() -> Option<u64> {
    fail::fail_point!("transfer::chunk", |ms| ms.and_then(|m| m.parse::<u64>().ok()));
    None
}

/// Runs `work`, which publishes on the sender of `seen`, handing every new value to `each`
/// until it ends; its output.
pub async fn forward<T>(
    work: impl Future<Output = T>,
    mut seen: tokio::sync::watch::Receiver<Transferred>,
    mut each: impl FnMut(Transferred),
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            Ok(()) = seen.changed() => each(*seen.borrow_and_update()),
        }
    }
}
