//! Running a pipeline: checking that every rank built the same one, running this rank's
//! stage (or, on one rank, every stage in turn), and agreeing on the outcome.

use std::time::Instant;

use super::emitter::{Downstream, Outlet};
use super::stats::{PipelineStats, StageWork};
use super::stream::{now_ns, Envelope, Outgoing, CANCEL, FINAL, TAG_CREDIT, TAG_EOS, TAG_ITEM};
use super::{Body, Stage};
use crate::comm::{Comm, Source, TagFilter};
use crate::error::{Error, ErrorKind, Result};

pub(super) fn run(comm: Comm, mut stages: Vec<Stage<'_>>, window: usize) -> Result<PipelineStats> {
    check_same_pipeline(&comm, &stages, window)?;
    let size = comm.size();
    let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    let placement: Vec<Vec<usize>> = if size == 1 {
        vec![vec![0]; stages.len()]
    } else {
        let mut first = 0;
        stages
            .iter()
            .map(|s| {
                first += s.ranks;
                (first - s.ranks..first).collect()
            })
            .collect()
    };
    let started = Instant::now();
    let (mut work, failure) = if size == 1 {
        fused(&mut stages)
    } else {
        let (work, failure) = distributed(&comm, &mut stages, &placement, window)?;
        (vec![work], failure)
    };
    let wall_s = started.elapsed().as_secs_f64();
    for w in &mut work {
        w.wall_s = wall_s;
    }
    // Every rank learns the first failure (by rank).
    let text = failure.unwrap_or_default();
    let failures = comm.all_gather_varcount(text.as_bytes())?;
    let first_failure = failures
        .parts()
        .enumerate()
        .find(|(_, t)| !t.is_empty())
        .map(|(rank, t)| (rank, String::from_utf8_lossy(t).into_owned()));
    let stats = PipelineStats::gather(&comm, &names, &placement, &work)?;
    comm.profiler()
        .attach_section("pipeline", &stats, stats.to_string());
    match first_failure {
        Some((rank, message)) => Err(Error::new(ErrorKind::TaskFailed, message).on_rank(rank)),
        None => Ok(stats),
    }
}

/// Every rank must build the same stages (names, rank counts) and window, and the rank
/// counts must fit the communicator: the same error on every rank otherwise.
fn check_same_pipeline(comm: &Comm, stages: &[Stage<'_>], window: usize) -> Result<()> {
    let description = format!(
        "{} (window {window})",
        stages
            .iter()
            .map(|s| format!("{} x{}", s.name, s.ranks))
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    let key = crate::collective::fingerprint(description.bytes());
    let keys = comm.all_gather(&[key])?;
    if let Some(other) = keys.iter().position(|&k| k != keys[0]) {
        return Err(Error::new(
            ErrorKind::Disagreement,
            format!(
                "pipeline: ranks 0 and {other} built different pipelines (stage names, rank \
                 counts or window differ)"
            ),
        ));
    }
    let wanted: usize = stages.iter().map(|s| s.ranks).sum();
    if let Some(empty) = stages.iter().find(|s| s.ranks == 0) {
        return Err(Error::new(
            ErrorKind::Config,
            format!("pipeline: stage '{}' has no ranks", empty.name),
        ));
    }
    if comm.size() > 1 && wanted != comm.size() {
        return Err(Error::new(
            ErrorKind::RankCount,
            format!(
                "pipeline: the stages ask for {wanted} ranks ({description}), the \
                 communicator has {}",
                comm.size()
            ),
        ));
    }
    Ok(())
}

/// The failure message of stage `name` on `rank` at the item in `envelope`.
fn failure_text(name: &str, rank: usize, envelope: Envelope, message: &str) -> String {
    format!(
        "pipeline: stage '{name}' failed on rank {rank} at item {} of source {}: {message}",
        envelope.seq, envelope.origin
    )
}

/// Runs this rank's stage over MPI; returns its work and its failure, if any.
fn distributed(
    comm: &Comm,
    stages: &mut [Stage<'_>],
    placement: &[Vec<usize>],
    window: usize,
) -> Result<(StageWork, Option<String>)> {
    let me = comm.rank();
    let s = placement
        .iter()
        .position(|ranks| ranks.contains(&me))
        .expect("the stages cover every rank");
    let ranks_of = |k: usize| placement[k][0]..placement[k][0] + placement[k].len();
    let downstream = if s + 1 < stages.len() {
        ranks_of(s + 1)
    } else {
        0..0
    };
    let mut out = Outgoing::new(comm, downstream, window);
    let mut work = StageWork {
        stage: s,
        ..StageWork::default()
    };
    let name = stages[s].name.clone();
    let stages_len = stages.len();
    let stage_rank = me - placement[s][0];
    let stage_ranks = placement[s].len();
    let failure = match &mut stages[s].body {
        Body::Source(produce) => {
            let mut outlet = Outlet::new(&mut out, stage_rank, stage_ranks);
            outlet.is_source = true;
            let started = Instant::now();
            let produced = produce(&mut outlet);
            work.busy_s = started.elapsed().as_secs_f64() - outlet.inside_s;
            work.items_out = outlet.emitted;
            produced.err().map(|message| {
                format!(
                    "pipeline: source '{name}' failed on rank {me} after {} items: {message}",
                    outlet.emitted
                )
            })
        }
        Body::Stage(f) => {
            let input = Input {
                upstream: ranks_of(s - 1),
                window,
                name: &name,
                stage_rank,
                stage_ranks,
                is_sink: s + 1 == stages_len,
            };
            input.consume(comm, f, &mut out, &mut work)?
        }
    };
    work.blocked_s = out.blocked_s;
    out.finish()?;
    Ok((work, failure))
}

/// Where a stage's items come from, and what it needs to know to take them.
struct Input<'n> {
    upstream: std::ops::Range<usize>,
    window: usize,
    name: &'n str,
    stage_rank: usize,
    stage_ranks: usize,
    is_sink: bool,
}

impl Input<'_> {
    /// A stage's input loop: items from the ranks of `upstream` until each has ended,
    /// credits back, and credits from downstream taken as they come. Returns the failure.
    fn consume(
        &self,
        comm: &Comm,
        f: &mut super::StageFn<'_>,
        out: &mut Outgoing<'_>,
        work: &mut StageWork,
    ) -> Result<Option<String>> {
        let me = comm.rank();
        let upstream = self.upstream.clone();
        let batch = (self.window / 2).max(1) as u64;
        let mut ended = vec![false; upstream.len()];
        let mut unacked = vec![0_u64; upstream.len()];
        let mut failure: Option<String> = None;
        let mut stopping = false;
        let mut cancel_sent = false;
        while ended.iter().any(|e| !e) {
            let waited = Instant::now();
            let status = comm.wait_for_message::<u8>(Source::Any, TagFilter::Any)?;
            if status.tag == TAG_CREDIT {
                out.take_credit(status.source)?;
                continue;
            }
            let (message, status) = comm.receive::<u8>(status.source, status.tag)?;
            work.idle_s += waited.elapsed().as_secs_f64();
            let u = status.source - upstream.start;
            if status.tag == TAG_EOS {
                ended[u] = true;
                let flags = FINAL | if stopping { CANCEL } else { 0 };
                comm.send(status.source, TAG_CREDIT, &[unacked[u], flags])?;
                unacked[u] = 0;
                continue;
            }
            debug_assert_eq!(status.tag, TAG_ITEM);
            work.items_in += 1;
            unacked[u] += 1;
            stopping |= out.cancelled;
            if !stopping {
                let (envelope, body) = Envelope::parse(&message)?;
                let mut outlet = Outlet::new(out, self.stage_rank, self.stage_ranks);
                outlet.envelope = envelope;
                let started = Instant::now();
                let done = f(body, &mut outlet);
                work.busy_s += started.elapsed().as_secs_f64() - outlet.inside_s;
                work.items_out += outlet.emitted;
                stopping |= outlet.stopping;
                if self.is_sink {
                    let latency = now_ns().saturating_sub(envelope.stamp_ns) as f64 * 1e-9;
                    work.latency_sum_s += latency;
                    work.latency_max_s = work.latency_max_s.max(latency);
                }
                if let Err(message) = done {
                    failure = Some(failure_text(self.name, me, envelope, &message));
                    stopping = true;
                }
            }
            if unacked[u] >= batch || stopping {
                let flags = if stopping { CANCEL } else { 0 };
                comm.send(status.source, TAG_CREDIT, &[unacked[u], flags])?;
                unacked[u] = 0;
            }
            if stopping && !cancel_sent {
                // Tell every producer still running to stop.
                for (k, rank) in upstream.clone().enumerate() {
                    if !ended[k] && rank != status.source {
                        comm.send(rank, TAG_CREDIT, &[0_u64, CANCEL])?;
                    }
                }
                cancel_sent = true;
            }
        }
        Ok(failure)
    }
}

/// One rank runs every stage: each item goes through the stages in turn.
fn fused(stages: &mut [Stage<'_>]) -> (Vec<StageWork>, Option<String>) {
    let mut work: Vec<StageWork> = (0..stages.len())
        .map(|stage| StageWork {
            stage,
            ..StageWork::default()
        })
        .collect();
    let mut failure = None;
    let (source, rest) = stages.split_first_mut().expect("a pipeline has a source");
    let (source_work, rest_work) = work.split_first_mut().expect("one entry per stage");
    let Body::Source(produce) = &mut source.body else {
        unreachable!("the first stage is the source")
    };
    let mut next = Fused {
        stages: rest,
        work: rest_work,
        failure: &mut failure,
    };
    let mut outlet = Outlet::new(&mut next, 0, 1);
    outlet.is_source = true;
    let started = Instant::now();
    let produced = produce(&mut outlet);
    source_work.busy_s = started.elapsed().as_secs_f64() - outlet.inside_s;
    source_work.items_out = outlet.emitted;
    let emitted = outlet.emitted;
    drop(outlet);
    if let (Err(message), None) = (produced, &failure) {
        failure = Some(format!(
            "pipeline: source '{}' failed on rank 0 after {emitted} items: {message}",
            source.name
        ));
    }
    (work, failure)
}

/// The stages after the current one, run in this process.
struct Fused<'s, 'a> {
    stages: &'s mut [Stage<'a>],
    work: &'s mut [StageWork],
    failure: &'s mut Option<String>,
}

impl Downstream for Fused<'_, '_> {
    fn push(&mut self, _key: Option<u64>, frame: Vec<u8>) -> Result<bool> {
        if self.failure.is_some() {
            return Ok(false);
        }
        let (stage, rest) = self
            .stages
            .split_first_mut()
            .expect("only a stage with a successor emits");
        let (work, rest_work) = self.work.split_first_mut().expect("one entry per stage");
        let Body::Stage(f) = &mut stage.body else {
            unreachable!("only the first stage is a source")
        };
        let is_sink = rest.is_empty();
        let (envelope, body) = Envelope::parse(&frame)?;
        let mut inner_failure = None;
        let done = {
            let mut next = Fused {
                stages: rest,
                work: rest_work,
                failure: &mut inner_failure,
            };
            let mut outlet = Outlet::new(&mut next, 0, 1);
            outlet.envelope = envelope;
            let started = Instant::now();
            let done = f(body, &mut outlet);
            work.busy_s += started.elapsed().as_secs_f64() - outlet.inside_s;
            work.items_out += outlet.emitted;
            done
        };
        work.items_in += 1;
        if is_sink {
            let latency = now_ns().saturating_sub(envelope.stamp_ns) as f64 * 1e-9;
            work.latency_sum_s += latency;
            work.latency_max_s = work.latency_max_s.max(latency);
        }
        if let Some(inner) = inner_failure {
            *self.failure = Some(inner);
        } else if let Err(message) = done {
            *self.failure = Some(failure_text(&stage.name, 0, envelope, &message));
        }
        Ok(self.failure.is_none())
    }
}
