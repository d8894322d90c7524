//! Connections of their own for the HTTP workers' threads.
//!
//! The shared connection is driven by a task on the main runtime, so every
//! command an HTTP worker sends on it crosses threads twice (the command to
//! the driver, the reply back), each crossing a wake-up of the other thread,
//! and the driver, woken once per command, writes each command alone. A
//! thread that asks for it (each HTTP worker, as it builds its services)
//! opens a connection of its own on first use, driven on that thread's own
//! runtime: its requests' commands and replies stay on the thread, and the
//! commands its requests make in one turn of its event loop leave in one
//! write. Until that connection is open, or while it cannot be opened, the
//! shared connection serves; an open one reconnects by itself, as the shared
//! one does.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

use super::Connection;

/// How long a thread whose connection could not be opened waits before it
/// tries again (meanwhile the shared connection serves it).
const RETRY_AFTER: Duration = Duration::from_secs(1);

enum Slot {
    Opening,
    Open(Connection),
    Failed(Instant),
}

thread_local! {
    static WANTED: Cell<bool> = const { Cell::new(false) };
    /// This thread's connections, by the id of the store they belong to.
    static SLOTS: RefCell<Vec<(u64, Slot)>> = const { RefCell::new(Vec::new()) };
}

/// Asks for connections of this thread's own from now on (each HTTP worker
/// calls it as it starts).
pub fn use_own_connections() {
    WANTED.set(true);
}

/// This thread's connection for store `id`, if the thread asked for one and
/// it is open. The first call on such a thread starts opening it with `open`
/// on the thread's runtime, and so does the first call a while after opening
/// failed.
pub(super) fn connection<F, Fut>(id: u64, open: F) -> Option<Connection>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Connection>> + Send + 'static,
{
    if !WANTED.get() {
        return None;
    }
    // Only a single-threaded runtime runs the spawned task on this thread,
    // where the slot it fills lives (an HTTP worker's is one).
    let runtime = Handle::try_current().ok()?;
    if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return None;
    }
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let index = slots.iter().position(|(i, _)| *i == id);
        match index.map(|i| &mut slots[i].1) {
            Some(Slot::Open(conn)) => return Some(conn.clone()),
            Some(Slot::Opening) => return None,
            Some(Slot::Failed(at)) if at.elapsed() < RETRY_AFTER => return None,
            Some(slot) => *slot = Slot::Opening,
            None => slots.push((id, Slot::Opening)),
        }
        let opening = open();
        runtime.spawn(async move {
            let opened = opening.await;
            SLOTS.with(|slots| {
                if let Some((_, slot)) = slots.borrow_mut().iter_mut().find(|(i, _)| *i == id) {
                    *slot = opened.map_or_else(|| Slot::Failed(Instant::now()), Slot::Open);
                }
            });
        });
        None
    })
}
