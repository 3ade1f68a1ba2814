//! The ghost plan of a matrix: which of this rank's vector entries each neighbour needs, and
//! the persistent exchange that moves exactly those before each product.

use crate::comm::neighbour::NeighbourExchange;
use crate::comm::request::{op_names, OpNames};
use crate::comm::Comm;
use crate::error::Result;
use crate::partition::Partition;

/// The library tag of ghost exchanges (past the halo tags, inside the library's range).
const GHOST_TAG: i32 = crate::comm::HALO_TAGS + 16;
const _: () = assert!(GHOST_TAG < crate::comm::LIBRARY_TAGS.end);

const NAMES: OpNames = op_names!("DistCsrMatrix::ghost_exchange");

/// Who needs which of my entries, and the exchange over them.
pub(crate) struct GhostPlan {
    /// Local positions (in this rank's piece of `x`) of the outgoing entries, in the order
    /// of the outgoing buffer.
    send_positions: Vec<usize>,
    exchange: NeighbourExchange<f64>,
    sends_to: usize,
    receives_from: usize,
}

impl GhostPlan {
    /// The plan for a rank needing `ghost_columns` (ascending, none of them its own) of a
    /// domain split as `columns`. Collective: one all-to-all of the column lists.
    pub(crate) fn new(
        comm: &Comm,
        columns: &Partition,
        ghost_columns: &[usize],
    ) -> Result<GhostPlan> {
        let size = comm.size();
        let mut need_counts = vec![0usize; size];
        for &g in ghost_columns {
            need_counts[columns.owner(g)] += 1;
        }
        // Ascending columns of a block partition: each owner's ghosts are one run, in owner
        // order, which is the order of the receives (and of the incoming buffer).
        let requests: Vec<u64> = ghost_columns.iter().map(|&g| g as u64).collect();
        let asked = comm.all_to_all_varcount(&requests, &need_counts)?;
        let first = columns.range(comm.rank()).start;
        let send_positions = asked
            .as_slice()
            .iter()
            .map(|&g| g as usize - first)
            .collect();
        let sends: Vec<(usize, usize)> = asked
            .counts()
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(r, &n)| (r, n))
            .collect();
        let receives: Vec<(usize, usize)> = need_counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(r, &n)| (r, n))
            .collect();
        Ok(GhostPlan {
            send_positions,
            exchange: NeighbourExchange::new(comm, NAMES, GHOST_TAG, &sends, &receives),
            sends_to: sends.len(),
            receives_from: receives.len(),
        })
    }

    /// Entries sent and received per exchange.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        self.exchange.sizes()
    }

    pub(crate) fn sends_to(&self) -> usize {
        self.sends_to
    }

    pub(crate) fn receives_from(&self) -> usize {
        self.receives_from
    }

    /// Packs the entries of `x` (this rank's piece) that others need and starts the exchange.
    pub(crate) fn start(&mut self, x: &[f64]) {
        let outgoing = self.exchange.outgoing_mut();
        for (slot, &p) in outgoing.iter_mut().zip(&self.send_positions) {
            *slot = x[p];
        }
        self.exchange.start();
    }

    /// Lets MPI progress the exchange.
    pub(crate) fn test(&mut self) -> bool {
        self.exchange.test()
    }

    /// Waits for the ghost entries; returns them, in the order of the ghost columns.
    pub(crate) fn finish(&mut self) -> &[f64] {
        self.exchange.finish();
        self.exchange.incoming()
    }
}
