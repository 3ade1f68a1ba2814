//! The optional watchdog: when a collective has not completed within a time limit, every
//! rank stuck in one says which operation it is in, then the job is aborted.
//!
//! Off by default. `SPMD_WATCHDOG=<seconds>` turns it on at [`Spmd::init`](crate::Spmd::init):
//! a background thread per rank then checks, several times per limit, how long the rank has
//! been inside its current `spmd` communication (every collective helper, `barrier`, and the
//! DistArray operations that communicate). When that exceeds the limit it prints, on stderr,
//!
//! ```text
//! spmd watchdog: rank 1 of 3 has been in all_reduce (its communication call #7, on a communicator of 3 ranks) for 10.0 s, over the 10 s limit
//! ```
//!
//! waits [`GRACE`] so the other stuck ranks can print theirs, then ends the whole job with
//! `MPI_Abort` and exit code [`WATCHDOG_EXIT_CODE`]. A rank that prints nothing was not inside
//! an `spmd` communication: computing, in raw MPI, or already finished. The usual culprit of
//! a hang is the rank whose line differs (another operation, another call number) or is
//! missing.
//!
//! Choose the limit above the longest legitimate wait of the program (a collective also waits
//! for the slowest rank's compute before it). With the watchdog off, a communication pays one
//! relaxed atomic load for it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// The environment variable that turns the watchdog on: a limit in seconds (e.g. `30`,
/// `2.5`).
pub const WATCHDOG_ENV: &str = "SPMD_WATCHDOG";

/// The exit code of a job that the watchdog ended.
pub const WATCHDOG_EXIT_CODE: i32 = 124;

/// How long a rank that found itself stuck waits for the others' reports before aborting.
pub const GRACE: Duration = Duration::from_secs(2);

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Communications entered so far (outermost ones only), for the call number in reports.
static CALLS: AtomicU64 = AtomicU64::new(0);
static CURRENT: Mutex<Option<Inside>> = Mutex::new(None);

thread_local! {
    /// Nesting depth of communications on this thread: helpers built on helpers count once.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The communication a rank is in.
#[derive(Clone, Copy)]
struct Inside {
    op: &'static str,
    call: u64,
    comm_size: usize,
    since: Instant,
}

/// The limit from [`WATCHDOG_ENV`], if set.
pub(crate) fn limit_from_env() -> Result<Option<Duration>> {
    let Ok(text) = std::env::var(WATCHDOG_ENV) else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(Error::new(
            ErrorKind::Config,
            format!("{WATCHDOG_ENV} must be a positive number of seconds, found {text:?}"),
        )),
    }
}

/// Starts the watchdog thread of this rank (once per process).
pub(crate) fn start(limit: Duration, rank: usize, size: usize) {
    if ENABLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let poll = (limit / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    std::thread::Builder::new()
        .name(format!("spmd-rank{rank}-watchdog"))
        .spawn(move || loop {
            std::thread::sleep(poll);
            let inside = *CURRENT.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(inside) = inside {
                let stuck = inside.since.elapsed();
                if stuck > limit {
                    report_and_abort(inside, stuck, limit, rank, size);
                }
            }
        })
        .expect("spawning the watchdog thread");
}

fn report_and_abort(inside: Inside, stuck: Duration, limit: Duration, rank: usize, size: usize) {
    let line = format!(
        "spmd watchdog: rank {rank} of {size} has been in {} (its communication call #{}, on a \
         communicator of {} ranks) for {:.1} s, over the {} s limit; aborting the job after \
         {} s for the other ranks' reports\n",
        inside.op,
        inside.call,
        inside.comm_size,
        stuck.as_secs_f64(),
        limit.as_secs_f64(),
        GRACE.as_secs()
    );
    // One write, so that the lines of ranks reporting at the same moment do not interleave;
    // the grace lets the other stuck ranks report too.
    super::abort_after_notice(&line, GRACE, WATCHDOG_EXIT_CODE)
}

/// Marks this rank as inside communication `op` until the guard drops. Inert when the
/// watchdog is off or a communication is already open (helpers built on helpers).
pub(crate) struct Watch {
    armed: bool,
}

impl Watch {
    #[inline]
    pub(crate) fn enter(op: &'static str, comm_size: usize) -> Watch {
        if !ENABLED.load(Ordering::Relaxed) {
            return Watch { armed: false };
        }
        let outermost = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get() == 1
        });
        if outermost {
            let call = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
            *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Inside {
                op,
                call,
                comm_size,
                since: Instant::now(),
            });
        }
        Watch { armed: true }
    }
}

impl Drop for Watch {
    #[inline]
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let outermost = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get() == 0
        });
        if outermost {
            *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}
