//! [`CommMatrix`]: who sent how much to whom, point to point.

use serde::{Deserialize, Serialize};

use super::rank_times::RankTimes;

/// Point-to-point traffic between the ranks of a run: bytes and messages per (source,
/// destination) and per operation, from what every rank sent ([`RankTimes::sent`]).
///
/// It holds the pairs that carried traffic only (a halo exchange touches two neighbours per
/// rank, not all of them), so it stays small at any rank count;
/// [`bytes`](Self::bytes) and [`messages`](Self::messages) give the dense matrices.
/// Collectives are not in it: MPI picks their messages.
///
/// ```
/// use spmd::timing::{CommMatrix, MatrixEntry};
/// let m = CommMatrix {
///     ranks: 2,
///     entries: vec![MatrixEntry { operation: "send".into(), from: 0, to: 1, bytes: 64, messages: 2 }],
/// };
/// assert_eq!(m.bytes(), [[0, 64], [0, 0]]);
/// assert_eq!(m.total_bytes(), 64);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommMatrix {
    /// The number of ranks: the matrices are `ranks × ranks`.
    pub ranks: usize,
    /// Every (operation, source, destination) that carried traffic, ordered by source,
    /// destination and operation.
    pub entries: Vec<MatrixEntry>,
}

/// The traffic of one operation from one rank to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixEntry {
    /// The operation that sent it (`send`, `DistArray::halo_exchange`, ...).
    pub operation: String,
    /// The sending rank.
    pub from: usize,
    /// The receiving rank.
    pub to: usize,
    /// Payload bytes.
    pub bytes: u64,
    /// Messages.
    pub messages: u64,
}

impl CommMatrix {
    /// The matrix of what each rank of `ranks` (index = rank) sent.
    pub fn from_ranks(ranks: &[RankTimes]) -> CommMatrix {
        let mut entries: Vec<MatrixEntry> = ranks
            .iter()
            .enumerate()
            .flat_map(|(from, r)| {
                r.sent.iter().map(move |t| MatrixEntry {
                    operation: t.operation.clone(),
                    from,
                    to: t.to,
                    bytes: t.bytes,
                    messages: t.messages,
                })
            })
            .collect();
        entries.sort_by(|a, b| (a.from, a.to, &a.operation).cmp(&(b.from, b.to, &b.operation)));
        CommMatrix {
            ranks: ranks.len(),
            entries,
        }
    }

    /// Bytes from each rank (row) to each rank (column), all operations together.
    pub fn bytes(&self) -> Vec<Vec<u64>> {
        self.dense(|e| e.bytes)
    }

    /// Messages from each rank (row) to each rank (column), all operations together.
    pub fn messages(&self) -> Vec<Vec<u64>> {
        self.dense(|e| e.messages)
    }

    /// Every operation with its bytes and messages over all pairs, most bytes first.
    pub fn operations(&self) -> Vec<(String, u64, u64)> {
        let mut totals: Vec<(String, u64, u64)> = Vec::new();
        for e in &self.entries {
            match totals.iter_mut().find(|t| t.0 == e.operation) {
                Some(t) => {
                    t.1 += e.bytes;
                    t.2 += e.messages;
                }
                None => totals.push((e.operation.clone(), e.bytes, e.messages)),
            }
        }
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        totals
    }

    /// Bytes over all pairs and operations.
    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.bytes).sum()
    }

    fn dense(&self, value: impl Fn(&MatrixEntry) -> u64) -> Vec<Vec<u64>> {
        let mut m = vec![vec![0; self.ranks]; self.ranks];
        for e in &self.entries {
            if e.from < self.ranks && e.to < self.ranks {
                m[e.from][e.to] += value(e);
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::Traffic;

    fn sent(rows: &[(&str, usize, u64, u64)]) -> RankTimes {
        let mut r: RankTimes = serde_json::from_str(
            r#"{"wall_s":1,"comm_s":0,"wait_s":0,"peak_rss_bytes":0,"regions":[]}"#,
        )
        .expect("a minimal rank");
        r.sent = rows
            .iter()
            .map(|&(op, to, bytes, messages)| Traffic {
                operation: op.into(),
                to,
                bytes,
                messages,
            })
            .collect();
        r
    }

    #[test]
    fn a_ring_and_a_halo_add_up_per_pair_and_per_operation() {
        let ranks = [
            sent(&[("send", 1, 8, 1), ("halo", 2, 100, 2)]),
            sent(&[("send", 2, 8, 1)]),
            sent(&[("halo", 0, 100, 2), ("send", 0, 8, 1)]),
        ];
        let m = CommMatrix::from_ranks(&ranks);
        assert_eq!(m.ranks, 3);
        assert_eq!(m.bytes(), [[0, 8, 100], [0, 0, 8], [108, 0, 0]]);
        assert_eq!(m.messages(), [[0, 1, 2], [0, 0, 1], [3, 0, 0]]);
        assert_eq!(
            m.operations(),
            [("halo".to_string(), 200, 4), ("send".to_string(), 24, 3)]
        );
        assert_eq!(m.total_bytes(), 224);
        let order: Vec<(usize, usize, &str)> = m
            .entries
            .iter()
            .map(|e| (e.from, e.to, e.operation.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (0, 1, "send"),
                (0, 2, "halo"),
                (1, 2, "send"),
                (2, 0, "halo"),
                (2, 0, "send")
            ]
        );
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<CommMatrix>(&json).unwrap(), m);
    }
}
