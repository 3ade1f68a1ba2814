//! The crate's error type.
//!
//! Every fallible operation returns [`Result<T>`](Result). An [`Error`] carries a
//! [`ErrorKind`] to match on, the rank that reports it (when MPI was running), and a message
//! that says what was expected and what was found.
//!
//! Collective operations validate their arguments *together* before any data moves, so when
//! one rank passes bad input every rank returns an error of the same kind instead of some
//! ranks hanging in MPI (see [`crate::collective`]).
//!
#![doc = include_str!("../docs/bad-input.md")]

use std::fmt;

/// What went wrong, for matching in code. New kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// MPI could not be initialised, was already initialised, or has been finalised.
    Init,
    /// MPI provides a lower thread level than the one requested.
    ThreadLevel,
    /// The rayon thread pool could not be configured as asked.
    ThreadPool,
    /// A root rank (or any rank argument) lies outside the communicator.
    InvalidRoot,
    /// A buffer has the wrong length for the operation (e.g. a receive buffer).
    BufferSize,
    /// Ranks passed arguments that must agree (lengths, roots, operations) but do not.
    Disagreement,
    /// A length must be divisible by the number of ranks but is not.
    NotDivisible,
    /// A count or displacement does not fit MPI's `int` (`i32`).
    CountOverflow,
    /// A partition was described with impossible parameters (zero ranks, zero block size, …).
    InvalidPartition,
    /// An index lies outside the range it must lie in.
    OutOfBounds,
    /// Another rank detected invalid input; this rank's own input was fine.
    RemoteError,
    /// A configuration value (e.g. an environment variable) could not be used.
    Config,
    /// An array's shape, split axis or ghost width does not fit the operation (e.g. shapes
    /// that differ, an axis beyond the array's dimensions, ghosts wider than a piece).
    Shape,
    /// The program runs on fewer ranks than it needs (e.g. started without `mpirun`); see
    /// [`SpmdBuilder::min_ranks`](crate::SpmdBuilder::min_ranks).
    RankCount,
}

impl ErrorKind {
    /// A stable small integer for this kind, used to tell other ranks which kind of error a
    /// rank found during an agreement check.
    pub(crate) fn code(self) -> i64 {
        self as i64 + 1
    }

    pub(crate) fn from_code(code: i64) -> Option<ErrorKind> {
        const ALL: [ErrorKind; 14] = [
            ErrorKind::Init,
            ErrorKind::ThreadLevel,
            ErrorKind::ThreadPool,
            ErrorKind::InvalidRoot,
            ErrorKind::BufferSize,
            ErrorKind::Disagreement,
            ErrorKind::NotDivisible,
            ErrorKind::CountOverflow,
            ErrorKind::InvalidPartition,
            ErrorKind::OutOfBounds,
            ErrorKind::RemoteError,
            ErrorKind::Config,
            ErrorKind::Shape,
            ErrorKind::RankCount,
        ];
        ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// An error from `spmd`: a kind, the reporting rank (if known) and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    rank: Option<i32>,
    message: String,
}

/// `Result` with [`Error`] as the error type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Makes an error of `kind` with `message` and no rank attached.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            rank: None,
            message: message.into(),
        }
    }

    /// Attaches the rank that reports this error.
    pub fn on_rank(mut self, rank: i32) -> Error {
        self.rank = Some(rank);
        self
    }

    /// The kind of error, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The rank that reported the error, if MPI was running.
    pub fn rank(&self) -> Option<i32> {
        self.rank
    }

    /// The message without the rank prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rank {
            Some(rank) => write!(f, "rank {rank}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_rank_and_message() {
        let e = Error::new(ErrorKind::InvalidRoot, "root 5 is out of range 0..4").on_rank(2);
        assert_eq!(e.to_string(), "rank 2: root 5 is out of range 0..4");
        assert_eq!(e.kind(), ErrorKind::InvalidRoot);
        assert_eq!(e.rank(), Some(2));
        let plain = Error::new(ErrorKind::Config, "bad");
        assert_eq!(plain.to_string(), "bad");
    }

    #[test]
    fn kind_codes_round_trip() {
        for code in 1..=14 {
            let kind = ErrorKind::from_code(code).expect("every code up to 14 names a kind");
            assert_eq!(kind.code(), code);
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(15), None);
    }
}
