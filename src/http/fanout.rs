//! The fan-out writer: one task per document writes each round's shared update to every
//! taken-over subscriber that kept up, one non-blocking `write` per socket.
//!
//! Why: with a task per subscriber, a round woke thousands of tasks through the document's
//! `watch`, and each was scheduled, polled through its stream and its socket's read side, and
//! only then wrote the bytes every one of them shares (B4 in docs/BENCHMARKS.md: that was ~20%
//! of the server's CPU per delivery, the `write` itself ~50%). Here a subscriber that has
//! nothing to send until the head moves ([`Subscription::idle_at`]) *parks*: its subscription
//! and its socket's write half go into its [`Seat`], in the document's set ([`DocFanout`]),
//! and its task sleeps until something concerns it alone. When a round is published, the
//! document's driver task walks the set and, for each seat at the previous head, takes the
//! shared step ([`Subscription::fan_out`]) and `try_write`s its framed bytes: what the
//! `write()` reference does.
//!
//! A seat the driver cannot serve whole goes back to its task, which then writes as the
//! generic writer (`stream::write_chunked`) does, through the stall guard: a socket that would
//! block (with the part of the chunk not written yet, sent first), a subscriber not at the
//! previous head (its coalesced catch-up), its peer's own write (the rebase), a new
//! generation of the head (deleted, replaced, shutdown). The task also takes its subscription
//! back for what the driver never does: a heartbeat, the credential's end, the client closing
//! the connection or sending bytes. Whoever holds the subscription holds the write half, so
//! two writers never interleave on one socket. Stalled subscribers keep what they kept before:
//! one subscription each, no queue.
//!
//! Only plain TCP connections park (a TLS connection encrypts every chunk on its own), and
//! only simpleton subscriptions with bodies: the others always have a task of their own.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Interval;

use crate::document::Published;
use crate::hub::{FanOut, Subscription};

use super::stall::StallGuard;
use super::stream::{heartbeat, next_chunk, revoked, shared_framed, tick, write_chunk, Feed};

/// Locks `m`; nothing panics while these locks are held, and a poisoned lock still holds a
/// sound value.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The documents' fan-outs of one server, by document.
#[derive(Default)]
pub struct Fanouts {
    docs: Mutex<HashMap<usize, Arc<DocFanout>>>,
}

impl Fanouts {
    /// The fan-out of `sub`'s document, started (at `at`) if it has none.
    fn of(self: &Arc<Self>, sub: &Subscription, at: &Arc<Published>) -> Arc<DocFanout> {
        let key = sub.document_key();
        let watch = sub.watch();
        let mut docs = lock(&self.docs);
        // The key is the document's address: a fan-out of another document that lived there
        // before (its driver not ended yet) listens to another channel.
        if let Some(doc) = docs.get(&key).filter(|doc| doc.watch.same_channel(&watch)) {
            return doc.clone();
        }
        let doc =
            Arc::new(DocFanout { watch: watch.clone(), set: Mutex::new(Set { at: at.clone(), seats: Vec::new() }) });
        docs.insert(key, doc.clone());
        tokio::spawn(drive(doc.clone(), watch, self.clone(), key));
        doc
    }
}

/// One document's parked subscribers and the publication they are at.
struct DocFanout {
    /// The document's publications (for telling documents apart).
    watch: watch::Receiver<Arc<Published>>,
    set: Mutex<Set>,
}

struct Set {
    /// The publication every parked seat is at; moved on only by the driver.
    at: Arc<Published>,
    /// Seats parked at `at` (a seat whose task took its subscription back stays listed, empty,
    /// until the next round drops it).
    seats: Vec<Arc<Seat>>,
}

/// The driver: one round at a time, every parked seat written to; ends when the document is
/// gone (its last subscription and its shell dropped the channel).
async fn drive(doc: Arc<DocFanout>, mut watch: watch::Receiver<Arc<Published>>, fanouts: Arc<Fanouts>, key: usize) {
    loop {
        let newest = watch.borrow_and_update().clone();
        doc.round(&newest);
        if watch.changed().await.is_err() {
            break;
        }
    }
    let mut docs = lock(&fanouts.docs);
    if docs.get(&key).is_some_and(|d| Arc::ptr_eq(d, &doc)) {
        docs.remove(&key);
    }
}

impl DocFanout {
    /// Serves every parked seat at `newest`. The seats are taken out of the set for the walk,
    /// so that subscribers parking meanwhile (at `newest`, which the set is at by then) wait
    /// for no lock; the seats the walk kept go back in.
    fn round(&self, newest: &Arc<Published>) {
        let seats = {
            let mut set = lock(&self.set);
            if Arc::ptr_eq(&set.at, newest) {
                return;
            }
            set.at = newest.clone();
            std::mem::take(&mut set.seats)
        };
        if seats.is_empty() {
            return;
        }
        let mut kept = Vec::with_capacity(seats.len());
        for seat in seats {
            // A panic computing one subscriber's step (a bug) ends that subscriber, as it
            // ended its own task before, not the fan-out of the whole document: its task
            // wakes to an empty seat and closes the connection.
            match catch_unwind(AssertUnwindSafe(|| seat.serve(newest))) {
                Ok(true) => kept.push(seat),
                Ok(false) => {}
                Err(_) => {
                    tracing::error!("a subscription's fan-out step panicked; closing its connection");
                    seat.back.notify_one();
                }
            }
        }
        lock(&self.set).seats.append(&mut kept);
    }

    /// Lists `seat`, which holds a subscription idle at `at`, when the set is at `at` too;
    /// false otherwise (the driver is a round behind or ahead: the task takes its
    /// subscription back and waits on its own for one round).
    fn list(&self, seat: &Arc<Seat>, at: &Arc<Published>) -> bool {
        let mut set = lock(&self.set);
        if set.at.generation != at.generation || set.at.head != at.head {
            return false;
        }
        let mut held = lock(&seat.held);
        if !held.listed {
            held.listed = true;
            set.seats.push(seat.clone());
        }
        true
    }
}

/// One taken-over subscriber's place in its document's fan-out.
#[derive(Default)]
pub struct Seat {
    held: Mutex<Held>,
    /// Wakes the subscriber's task when the driver gives its subscription back.
    back: Notify,
}

#[derive(Default)]
struct Held {
    state: State,
    /// Whether the seat is in its document's set (or in the driver's hands).
    listed: bool,
}

#[derive(Default)]
enum State {
    /// The task has the subscription (or has ended).
    #[default]
    Away,
    /// Parked: the driver may write.
    Parked(Box<Subscription>, OwnedWriteHalf),
    /// Given back by the driver, with the part of a chunk it could not write.
    Back(Box<Subscription>, OwnedWriteHalf, Option<Bytes>),
}

impl Seat {
    /// The driver's part for one seat: true when it stays parked.
    fn serve(&self, newest: &Arc<Published>) -> bool {
        let mut held = lock(&self.held);
        let State::Parked(mut sub, write) = std::mem::take(&mut held.state) else {
            held.listed = false;
            return false;
        };
        // What the task must write first when it takes the subscription back; None: it stays.
        let back: Option<Option<Bytes>> = match sub.fan_out(newest) {
            FanOut::Idle => None,
            FanOut::Send(step) => {
                let framed = shared_framed(step);
                match write.try_write(framed) {
                    Ok(n) if n == framed.len() => None,
                    // Would block (or broke): the task writes the rest through the stall guard
                    // (or finds the connection gone).
                    Ok(n) => Some(Some(framed.slice(n..))),
                    Err(_) => Some(Some(framed.clone())),
                }
            }
            FanOut::Own => Some(None),
        };
        let Some(tail) = back else {
            held.state = State::Parked(sub, write);
            return true;
        };
        held.state = State::Back(sub, write, tail);
        held.listed = false;
        drop(held);
        self.back.notify_one();
        false
    }

    /// Puts the task's subscription and write half in the seat.
    fn park(&self, sub: Box<Subscription>, write: OwnedWriteHalf) {
        lock(&self.held).state = State::Parked(sub, write);
    }

    /// The task's part: its subscription and write half back, with what the driver left
    /// unwritten. None if they are not here (never, while the task lives).
    fn take(&self) -> Option<(Box<Subscription>, OwnedWriteHalf, Option<Bytes>)> {
        match std::mem::take(&mut lock(&self.held).state) {
            State::Away => None,
            State::Parked(sub, write) => Some((sub, write, None)),
            State::Back(sub, write, tail) => Some((sub, write, tail)),
        }
    }
}

/// Empties the seat when its task ends, however it ends (an abort at shutdown included): the
/// subscription must not outlive its connection.
struct Leave(Arc<Seat>);

impl Drop for Leave {
    fn drop(&mut self) {
        let left = std::mem::take(&mut lock(&self.0.held).state);
        drop(left);
    }
}

/// Why a parked task woke.
enum Woke {
    /// The driver gave the subscription back.
    Back,
    Beat,
    Revoked,
    /// The client closed the connection (or it broke).
    Closed,
}

/// Writes `feed` to a plain TCP connection taken over after its 209 head, as
/// `stream::write_chunked` does (same bytes, same end, the socket back for hyper when
/// `reusable` and the client sent nothing during the stream), parking the subscription in its
/// document's fan-out whenever it has nothing to send.
pub fn write_fanned(
    tcp: TcpStream,
    feed: Feed,
    reusable: bool,
    stall: Duration,
    fanouts: Arc<Fanouts>,
) -> impl Future<Output = Option<TcpStream>> + Send {
    // Built before the future, so that the future holds each part once (B5: an idle
    // subscription is mostly this task).
    let Feed { sub, beats, ended, shutdown, header_only } = feed;
    let (read, write) = tcp.into_split();
    let seat = Arc::new(Seat::default());
    let task = Task {
        sub: Some(sub),
        io: Some(StallGuard::new(write, stall)),
        read,
        beats,
        ended,
        shutdown,
        header_only,
        reusable,
        stall,
        _leave: Leave(seat.clone()),
        seat,
        fanouts,
        doc: None,
    };
    task.run()
}

/// A subscriber's own task on a plain TCP connection.
struct Task {
    /// The subscription and the write half: here, or in the seat while parked.
    sub: Option<Box<Subscription>>,
    io: Option<StallGuard<OwnedWriteHalf>>,
    read: OwnedReadHalf,
    beats: Option<Interval>,
    ended: Option<watch::Receiver<bool>>,
    shutdown: watch::Receiver<bool>,
    header_only: bool,
    reusable: bool,
    stall: Duration,
    seat: Arc<Seat>,
    _leave: Leave,
    fanouts: Arc<Fanouts>,
    /// The document's fan-out, once the subscription parked.
    doc: Option<Arc<DocFanout>>,
}

/// What the task does after a chunk.
enum Then {
    Go,
    /// The stream is over: the last chunk, then the socket back to hyper or closed.
    End,
}

impl Task {
    async fn run(mut self) -> Option<TcpStream> {
        loop {
            if let Then::End = self.park_while_idle().await? {
                break;
            }
            if let Then::End = self.own_chunk().await? {
                break;
            }
        }
        self.sub = None;
        let mut io = self.io.take()?;
        io.write_all(b"0\r\n\r\n").await.ok()?;
        io.flush().await.ok()?;
        if self.reusable {
            return self.read.reunite(io.into_inner()).ok();
        }
        let _ = io.shutdown().await;
        None
    }

    /// While the subscription has nothing to send until the head moves: parks it and waits.
    /// None when the connection is gone.
    async fn park_while_idle(&mut self) -> Option<Then> {
        loop {
            let sub = self.sub.as_mut()?;
            let Some(at) = (!self.header_only).then(|| sub.idle_at()).flatten() else {
                return Some(Then::Go);
            };
            let doc = self.doc.get_or_insert_with(|| self.fanouts.of(sub, &at)).clone();
            // Parked in the seat first: once listed, the seat is the driver's to serve.
            self.seat.park(self.sub.take()?, self.io.take()?.into_inner());
            let listed = doc.list(&self.seat, &at);
            let woke = match listed {
                true => parked(&self.seat, &mut self.read, &mut self.beats, &mut self.ended, &mut self.reusable).await,
                // The driver is a round behind or ahead: the task waits on its own for one round
                // (the driver may have served the seat meanwhile if it was still listed: the
                // subscription says what went out).
                false => Woke::Back,
            };
            if let Woke::Closed = woke {
                return None;
            }
            self.unpark().await?;
            match woke {
                Woke::Back | Woke::Closed if listed => continue,
                Woke::Back | Woke::Closed => return Some(Then::Go),
                Woke::Revoked => return Some(Then::End),
                Woke::Beat if *self.shutdown.borrow() => return Some(Then::End),
                Woke::Beat => self.write(heartbeat().framed()).await?,
            }
        }
    }

    /// Takes the subscription and write half back from the seat, and writes first what the
    /// driver left unwritten.
    async fn unpark(&mut self) -> Option<()> {
        let (sub, write, tail) = self.seat.take()?;
        self.sub = Some(sub);
        self.io = Some(StallGuard::new(write, self.stall));
        if let Some(tail) = tail {
            self.write(&tail).await?;
        }
        Some(())
    }

    /// One chunk on the subscriber's own path, as `stream::write_chunked` writes it.
    async fn own_chunk(&mut self) -> Option<Then> {
        let mut discard = [0u8; 64];
        let sub = self.sub.as_mut()?;
        let chunk = tokio::select! {
            // The client's side first, so that bytes it sent count before the stream's end.
            biased;
            read = self.read.read(&mut discard) => match read {
                Ok(n) if n > 0 => {
                    self.reusable = false;
                    return Some(Then::Go);
                }
                // The client closed the connection, or it broke: release the subscription.
                _ => return None,
            },
            chunk = Box::pin(next_chunk(sub, &mut self.beats, &mut self.ended, &self.shutdown, self.header_only)) => chunk,
        };
        let Some(chunk) = chunk else { return Some(Then::End) };
        // An empty chunk would read as the end of the body.
        if !chunk.is_empty() {
            self.write(chunk.framed()).await?;
        }
        Some(Then::Go)
    }

    async fn write(&mut self, framed: &[u8]) -> Option<()> {
        write_chunk(self.io.as_mut()?, framed).await.ok()
    }
}

/// A parked task's wait: for the driver to give the subscription back, a heartbeat, the
/// credential's end, or the client (bytes it sends mark the connection not reusable, as in
/// `stream::write_chunked`; its end ends the task).
async fn parked(
    seat: &Seat,
    read: &mut OwnedReadHalf,
    beats: &mut Option<Interval>,
    ended: &mut Option<watch::Receiver<bool>>,
    reusable: &mut bool,
) -> Woke {
    let mut discard = [0u8; 64];
    loop {
        tokio::select! {
            biased;
            ready = read.readable() => {
                if ready.is_err() {
                    return Woke::Closed;
                }
                match read.try_read(&mut discard) {
                    Ok(0) => return Woke::Closed,
                    Ok(_) => *reusable = false,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Woke::Closed,
                }
            }
            () = seat.back.notified() => return Woke::Back,
            () = tick(beats) => return Woke::Beat,
            () = revoked(ended) => return Woke::Revoked,
        }
    }
}
