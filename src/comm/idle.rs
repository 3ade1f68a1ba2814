//! Waiting for a message without holding a core: [`Comm::wait_for_message`].
//!
//! A blocking `MPI_Probe` or `MPI_Recv` spins in Open MPI and MPICH: a rank that waits a
//! second burns a second of CPU. That is right for a rank that waits microseconds in a
//! collective, and wrong for a task farm's manager or a pipeline stage that waits for work
//! while another rank (or its own rayon threads) could use the core. `wait_for_message`
//! probes without blocking and sleeps between probes, backing off from a few microseconds to
//! [`MAX_NAP`]: once it has backed off it wakes about a thousand times a second, each wake a
//! probe and a sleep (measured at about 40 µs of CPU per sleep on a 2-core VM, so about 4%
//! of a core; far less on bare metal), and it adds at most one nap (plus the kernel's timer
//! slack) to the latency of a message that arrives during a long wait.

use std::time::{Duration, Instant};

use mpi::datatype::Equivalence;

use super::p2p::{Source, Status, TagFilter};
use super::Comm;
use crate::error::Result;

/// The longest sleep between two probes.
pub const MAX_NAP: Duration = Duration::from_millis(1);
/// How long the wait polls without sleeping before it starts to nap: a message that is
/// microseconds away is taken at full speed.
const SPIN: Duration = Duration::from_micros(20);

/// CPU time this thread has used (user + system), where the OS tells it.
pub(crate) fn thread_cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    let who = libc::RUSAGE_THREAD;
    #[cfg(not(target_os = "linux"))]
    let who = libc::RUSAGE_SELF;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; getrusage only writes it.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

impl Comm {
    /// Waits until a message from `from` with a matching tag can be received and returns its
    /// [`Status`] (`count` in elements of `T`), like [`probe`](Comm::probe), but *sleeps*
    /// between non-blocking probes instead of spinning in MPI: use it where a rank may wait
    /// long (a farm's manager, an idle worker or pipeline stage) and its core is worth more
    /// to other threads or ranks than a few microseconds of latency. It backs off from
    /// polling to naps of at most [`MAX_NAP`]. The wait is one comm region in the profiler
    /// and is covered by the watchdog.
    ///
    /// # Errors
    /// `InvalidRoot`/`InvalidTag` for a bad source or tag.
    pub fn wait_for_message<T: Equivalence>(
        &self,
        from: impl Into<Source>,
        tag: impl Into<TagFilter>,
    ) -> Result<Status> {
        let (from, tag) = (from.into(), tag.into());
        // The common case (the message is here) costs one probe and no region of its own.
        if let Some(status) = self.try_probe_quiet::<T>(from, tag)? {
            return Ok(status);
        }
        let _timer = self.timed("wait_for_message", 0);
        let start = Instant::now();
        let mut nap = Duration::from_micros(2);
        loop {
            if let Some(status) = self.try_probe_quiet::<T>(from, tag)? {
                return Ok(status);
            }
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(MAX_NAP);
        }
    }
}
