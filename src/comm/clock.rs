//! How far each rank's clock is from rank 0's, for lining up the ranks' timelines in a trace.
//!
//! Rank 0 answers pings with its clock reading; a rank that sent a ping at `s` and got the
//! answer `r` back at `b` (its own clock) knows rank 0 read `r` somewhere between `s` and `b`,
//! so rank 0's clock is ahead of its own by `r − (s + b)/2`, give or take half the round trip.
//! The fastest of several round trips gives the tightest bound. Ranks take their turns one
//! after the other and sleep while they wait, so the two ranks measuring have the cores.

use super::Comm;
use crate::error::Result;

/// Round trips per rank; the fastest gives the offset.
const ROUND_TRIPS: usize = 32;
/// Tags on the private communicator the measurement runs on.
const GO: u32 = 0;
const PING: u32 = 1;
const PONG: u32 = 2;

/// One rank's clock against rank 0's at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offset {
    /// This rank's clock (ns) at the measurement.
    pub at_ns: i64,
    /// Nanoseconds to add to this rank's clock to read rank 0's.
    pub offset_ns: i64,
    /// The offset is right to within this many ns (half the fastest round trip).
    pub error_ns: u64,
}

/// Measures this rank's offset to rank 0 on `comm`, reading the clock with `now_ns`.
/// Collective. `comm` must carry no other messages with tags 0-2 meanwhile (a duplicate of
/// the world serves), and its profiler should be off, so the pings are not traced.
pub(crate) fn offset_to_root(comm: &Comm, now_ns: impl Fn() -> i64) -> Result<Offset> {
    if comm.rank() == 0 {
        let mut ping = [0_i64; 1];
        for peer in 1..comm.size() {
            comm.send(peer, GO, &[0_i64])?;
            for _ in 0..ROUND_TRIPS {
                comm.receive_into(peer, PING, &mut ping)?;
                comm.send(peer, PONG, &[now_ns()])?;
            }
        }
        return Ok(Offset {
            at_ns: now_ns(),
            offset_ns: 0,
            error_ns: 0,
        });
    }
    comm.wait_for_message::<i64>(0, GO)?;
    let mut answer = [0_i64; 1];
    comm.receive_into(0, GO, &mut answer)?;
    let mut best = Offset {
        at_ns: 0,
        offset_ns: 0,
        error_ns: u64::MAX,
    };
    for _ in 0..ROUND_TRIPS {
        let sent = now_ns();
        comm.send(0, PING, &[sent])?;
        comm.receive_into(0, PONG, &mut answer)?;
        let back = now_ns();
        let half = u64::try_from(back - sent).unwrap_or(0).div_ceil(2);
        if half < best.error_ns {
            let middle = sent + (back - sent) / 2;
            best = Offset {
                at_ns: middle,
                offset_ns: answer[0] - middle,
                error_ns: half,
            };
        }
    }
    Ok(best)
}
