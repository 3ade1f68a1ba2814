//! A worker rank: receive a chunk, run its tasks, send the outcomes back, until told to stop.

use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{results_message, run_task, unframe, Outcome, RankWork, TAG_RESULTS, TAG_STOP};
use crate::comm::idle::thread_cpu_time;
use crate::comm::wire::decode;
use crate::comm::{wait_all, Comm, Request, TagFilter};
use crate::error::Result;

/// Works for `manager` until it sends the stop message.
pub(super) fn work<T, R, F>(comm: &Comm, manager: usize, f: &F) -> Result<RankWork>
where
    T: DeserializeOwned,
    R: Serialize,
    F: Fn(T) -> std::result::Result<R, String> + Sync,
{
    let cpu_at_start = thread_cpu_time();
    let mut work = RankWork {
        rank: comm.rank(),
        ..RankWork::default()
    };
    let mut sends: Vec<Request<Vec<u8>>> = Vec::new();
    loop {
        let waited = Instant::now();
        let status = comm.wait_for_message::<u8>(manager, TagFilter::Any)?;
        let (bytes, status) = comm.receive::<u8>(manager, status.tag)?;
        work.idle_s += waited.elapsed().as_secs_f64();
        if status.tag == TAG_STOP {
            break;
        }
        let (first, count, body) = unframe(&bytes)?;
        let outcomes: Vec<Outcome<R>> = match decode::<Vec<T>>(body) {
            Ok(tasks) => {
                let _region = comm.profiler().compute("farm task");
                let busy = Instant::now();
                let outcomes = tasks.into_iter().map(|t| run_task(f, t)).collect();
                work.busy_s += busy.elapsed().as_secs_f64();
                outcomes
            }
            Err(e) => (0..count)
                .map(|_| Outcome::Failed(e.clone().on_rank(comm.rank()).to_string()))
                .collect(),
        };
        work.tasks += count as u64;
        sends.retain_mut(|s| !s.test());
        sends.push(comm.send_immediate(manager, TAG_RESULTS, results_message(first, &outcomes))?);
    }
    wait_all(sends)?;
    work.mpi_thread_cpu_s = (thread_cpu_time() - cpu_at_start).as_secs_f64();
    Ok(work)
}
