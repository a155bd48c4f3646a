//! The writer thread: the only user of the [`Database`], so the registry
//! never waits on the disk. It stores what the registry staged in batches
//! (group commit: everything queued within [`GROUP_COMMIT_WINDOW`] of the
//! batch's first message, or while the previous transaction ran, goes into
//! one transaction) and reports each batch back in order with
//! [`Written`].
//!
//! Failures: a batch that cannot be stored (disk full, I/O error) is rolled
//! back and reported failed; every job of the same *generation* still
//! queued behind it is refused unwritten, because its id follows an id that
//! was not stored. The registry rewinds its ids and sends the next jobs
//! under a new generation. While writes fail, [`Journal::health`] is
//! false and the thread tries a small write every [`PROBE_INTERVAL`], so
//! health comes back as soon as the disk does, even with no traffic.
//!
//! Durability: a commit (WAL, `synchronous=NORMAL`) survives a crash of the
//! process. To bound what a power loss can cost, the writer checkpoints
//! (syncing the log to disk) at most [`SYNC_INTERVAL`] after a commit, also
//! when traffic stops.
//!
//! Invariants: jobs are stored and reported in the order they were
//! submitted; a job is reported `Ok` only after its transaction committed.

use super::database::{Database, Record};
use actix::{Message, Recipient};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most messages stored in one transaction.
pub(crate) const MAX_BATCH: usize = 1024;
/// Under load, how long the writer lets messages gather after the first one
/// of a batch arrives: what storing adds to a message's latency, at most,
/// besides the commit itself.
pub(crate) const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(5);
/// A batch at least this large means messages arrive faster than one by
/// one: the next batch waits [`GROUP_COMMIT_WINDOW`] to gather more.
pub(crate) const BUSY_BATCH: usize = 4;
/// How often a failing writer checks whether the disk is back.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest time a committed batch waits to be synced to disk by a
/// checkpoint: what a power loss can cost (a crash of the process alone
/// loses nothing committed).
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// The next `count` submitted jobs were stored (`stored`) or not.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Written {
    pub(crate) count: usize,
    pub(crate) stored: bool,
}

/// One message to store.
struct Job {
    generation: u64,
    record: Record,
}

/// The registry's handle on the writer thread. Dropping it lets the thread
/// store what is queued, then waits for it to finish.
pub(crate) struct Journal {
    jobs: Option<Sender<Job>>,
    healthy: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Starts the writer thread on `database`; outcomes go to `written`.
    pub(crate) fn start(
        database: Database,
        history: usize,
        ref_window: u64,
        written: Recipient<Written>,
    ) -> std::io::Result<Journal> {
        let (jobs, receiver) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            database,
            history,
            ref_window,
            written,
            healthy: healthy.clone(),
            failed_generation: None,
            unsynced_since: None,
        };
        let thread = std::thread::Builder::new()
            .name("charla-writer".to_owned())
            .spawn(move || writer.run(receiver))?;
        Ok(Journal {
            jobs: Some(jobs),
            healthy,
            thread: Some(thread),
        })
    }

    /// Queues a record; its outcome comes back as part of a [`Written`].
    /// False when the thread is gone (it only ends when the journal drops).
    pub(crate) fn submit(&self, generation: u64, record: Record) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job { generation, record }).is_ok())
    }

    /// The health flag: false while writes fail.
    pub(crate) fn health(&self) -> Arc<AtomicBool> {
        self.healthy.clone()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }
}

struct Writer {
    database: Database,
    history: usize,
    ref_window: u64,
    written: Recipient<Written>,
    healthy: Arc<AtomicBool>,
    /// The newest generation that failed: its remaining jobs are refused.
    failed_generation: Option<u64>,
    /// When the oldest commit not yet synced by a checkpoint was made.
    unsynced_since: Option<Instant>,
}

impl Writer {
    fn run(mut self, jobs: Receiver<Job>) {
        let mut busy = false;
        loop {
            let first = if let Some(since) = self.unsynced_since {
                let due = (since + SYNC_INTERVAL).saturating_duration_since(Instant::now());
                match jobs.recv_timeout(due) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync();
                        if !self.healthy.load(Ordering::Acquire) {
                            self.probe();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        self.sync();
                        return;
                    }
                }
            } else if self.healthy.load(Ordering::Acquire) {
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                match jobs.recv_timeout(PROBE_INTERVAL) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        self.probe();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            // Group commit under load: let the registry queue more before
            // writing, so a transaction (and the pages it rewrites, and the
            // wake-ups around it) serves many messages; sleeping, rather than
            // waiting on the channel, costs no wake-up per message meanwhile.
            // A quiet writer writes at once.
            if busy {
                std::thread::sleep(GROUP_COMMIT_WINDOW);
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            busy = batch.len() >= BUSY_BATCH;
            self.write(batch);
            if self
                .unsynced_since
                .is_some_and(|since| since.elapsed() >= SYNC_INTERVAL)
            {
                self.sync();
            }
        }
    }

    /// Checkpoints, so that every commit so far survives a power loss.
    fn sync(&mut self) {
        match self.database.checkpoint() {
            Ok(()) => self.unsynced_since = None,
            Err(error) => {
                tracing::warn!(error = %error, "cannot sync the database to disk; retrying");
                self.unsynced_since = Some(Instant::now());
            }
        }
    }

    /// Refuses the stale prefix of `batch` (jobs of a failed generation),
    /// stores the rest in one transaction, and reports both in order.
    fn write(&mut self, batch: Vec<Job>) {
        let stale = batch
            .iter()
            .take_while(|job| self.failed_generation.is_some_and(|g| job.generation <= g))
            .count();
        if stale > 0 {
            self.report(stale, false);
        }
        let Some(generation) = batch.get(stale).map(|job| job.generation) else {
            return;
        };
        let records: Vec<Record> = batch
            .into_iter()
            .skip(stale)
            .map(|job| job.record)
            .collect();
        match self
            .database
            .append(&records, self.history, self.ref_window)
        {
            Ok(()) => {
                self.unsynced_since.get_or_insert_with(Instant::now);
                if !self.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!("the database accepts writes again");
                }
                self.report(records.len(), true);
            }
            Err(error) => {
                if self.healthy.swap(false, Ordering::AcqRel) {
                    tracing::error!(error = %error, "cannot store messages: refusing them until the database accepts writes");
                }
                self.failed_generation = Some(generation);
                self.report(records.len(), false);
            }
        }
    }

    fn probe(&mut self) {
        match self.database.probe() {
            Ok(()) => {
                tracing::info!("the database accepts writes again");
                self.healthy.store(true, Ordering::Release);
            }
            Err(error) => tracing::debug!(error = %error, "the database still refuses writes"),
        }
    }

    fn report(&self, count: usize, stored: bool) {
        self.written.do_send(Written { count, stored });
    }
}
