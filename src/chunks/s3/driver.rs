//! The S3 engine's own small tokio runtime, and the two ways into it: [`Driver::block`] for the
//! synchronous `ChunkStore` calls, [`Driver::spawn`] for async callers (the `Bucket` API).
//!
//! Why a runtime of its own: the `ChunkStore` trait is synchronous and is called from three
//! kinds of threads — a server worker inside `block_in_place`, the blocking pool
//! (`spawn_blocking`), and threads no runtime knows (the chunk writer, tests). `Handle::block_on`
//! of the server's runtime panics inside `block_in_place` on some paths and cannot be called
//! from a current-thread runtime at all; a future spawned on a runtime of our own and waited
//! for with a plain channel works from every one of them, and the S3 connections' tasks live
//! on threads that never block. Two worker threads: the work is network waits, not CPU.
//!
//! Every operation has a deadline ([`OP_DEADLINE`]), so a caller never waits forever on a
//! store that stopped answering. Dropping the driver shuts the runtime down in the background,
//! which is allowed on any thread (a plain drop of a runtime panics inside an async context,
//! where the server drops its engines).

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

/// The longest one engine operation may take, retries included (a bulk lookup of a collector
/// page is the longest: 256 HEADs, 16 at a time).
pub const OP_DEADLINE: Duration = Duration::from_secs(120);

/// Why an operation produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It ran past its deadline.
    Deadline,
    /// The runtime shut down under it (the engine is being dropped).
    Shutdown,
}

/// The runtime and its handle.
pub struct Driver {
    runtime: Option<Runtime>,
    handle: Handle,
    deadline: Duration,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

impl Driver {
    /// Starts the runtime (threads named `plait-s3`) with [`OP_DEADLINE`].
    pub fn new() -> std::io::Result<Self> {
        Self::with_deadline(OP_DEADLINE)
    }

    /// Starts the runtime with another deadline per operation.
    pub fn with_deadline(deadline: Duration) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread().worker_threads(2).thread_name("plait-s3").enable_all().build()?;
        let handle = runtime.handle().clone();
        Ok(Driver { runtime: Some(runtime), handle, deadline })
    }

    /// Runs `work` on the engine's runtime and blocks the calling thread until it is done or
    /// its deadline passes. Callable from any thread, inside a runtime or not.
    pub fn block<F>(&self, work: F) -> Result<F::Output, Stopped>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let deadline = self.deadline;
        self.handle.spawn(async move {
            let out = tokio::time::timeout(deadline, work).await;
            let _ = tx.send(out);
        });
        match rx.recv() {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_elapsed)) => Err(Stopped::Deadline),
            // The task was dropped unfinished: the runtime is shutting down.
            Err(_) => Err(Stopped::Shutdown),
        }
    }

    /// Runs `work` on the engine's runtime and awaits it from any async context (the
    /// caller's runtime only waits on a join handle).
    pub async fn spawn<F>(&self, work: F) -> Result<F::Output, Stopped>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(tokio::time::timeout(self.deadline, work)).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_elapsed)) => Err(Stopped::Deadline),
            Err(_) => Err(Stopped::Shutdown),
        }
    }

    /// The runtime's handle, for tasks that outlive one call (an object's byte stream).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    /// A future that needs the driver's reactor and timer (a plain executor could not run it).
    async fn work(n: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        n + u64::from(listener.local_addr().unwrap().port() > 0)
    }

    #[test]
    fn blocks_from_a_plain_thread() {
        let driver = Driver::new().unwrap();
        assert_eq!(driver.block(work(1)), Ok(2));
        let driver = Arc::new(driver);
        let d = driver.clone();
        assert_eq!(std::thread::spawn(move || d.block(work(2))).join().unwrap(), Ok(3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocks_from_block_in_place_and_the_blocking_pool_and_drops_in_async_code() {
        let driver = Arc::new(Driver::new().unwrap());
        assert_eq!(tokio::task::block_in_place(|| driver.block(work(3))), Ok(4));
        let d = driver.clone();
        assert_eq!(tokio::task::spawn_blocking(move || d.block(work(4))).await.unwrap(), Ok(5));
        assert_eq!(driver.spawn(work(5)).await, Ok(6));
        // Dropped on a runtime worker: must not panic.
        drop(Arc::try_unwrap(driver).unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn blocks_from_a_current_thread_runtime() {
        let driver = Driver::new().unwrap();
        // The calling runtime's only thread is blocked; the driver's own threads do the work.
        assert_eq!(driver.block(work(6)), Ok(7));
        assert_eq!(driver.spawn(work(7)).await, Ok(8));
    }

    #[test]
    fn a_stopped_runtime_is_an_answer_not_a_hang() {
        let mut driver = Driver::new().unwrap();
        if let Some(rt) = driver.runtime.take() {
            rt.shutdown_background();
        }
        assert_eq!(driver.block(work(1)), Err(Stopped::Shutdown));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deadline_ends_an_operation_that_never_answers() {
        let driver = Arc::new(Driver::with_deadline(Duration::from_millis(50)).unwrap());
        assert_eq!(driver.spawn(std::future::pending::<()>()).await, Err(Stopped::Deadline));
        let d = driver.clone();
        let blocked = tokio::task::spawn_blocking(move || d.block(std::future::pending::<()>()));
        assert_eq!(blocked.await.unwrap(), Err(Stopped::Deadline));
    }
}
