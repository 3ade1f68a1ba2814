//! The crate's error type.
//!
//! Every fallible operation returns [`Result<T>`](Result). An [`Error`] carries an
//! [`ErrorKind`] to match on, the rank that found the problem (when MPI was running), a
//! message that names the operation, what was expected and what was found, and, for I/O and
//! parse failures, the underlying error as its [`source`](std::error::Error::source).
//!
//! Collective operations validate their arguments *together* before any data moves, so when
//! one rank passes bad input every rank returns an error of the same kind and message instead
//! of some ranks hanging in MPI (see [`crate::collective`]).
//!
#![doc = include_str!("../docs/bad-input.md")]

use std::fmt;
use std::sync::Arc;

/// Declares [`ErrorKind`] and the table that numbers its variants, from one list, so the
/// numbering used to tell other ranks which kind of error a rank found cannot fall out of step
/// with the enum.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// What went wrong, for matching in code. New kinds may be added.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];
        }
    };
}

error_kinds! {
    /// MPI could not be initialised: it already was in this process, or it was finalised
    /// (MPI cannot be initialised again after that).
    Init,
    /// MPI provides a lower thread level than the one requested.
    ThreadLevel,
    /// The rayon thread pool could not be configured as asked.
    ThreadPool,
    /// A root rank (or any rank argument) lies outside the communicator.
    InvalidRoot,
    /// A buffer has the wrong length for the operation (e.g. a receive buffer).
    BufferSize,
    /// Ranks passed arguments that must agree (lengths, roots, operations, element types,
    /// array shapes) but do not; the message names the ranks and their values.
    Disagreement,
    /// A length must be divisible by the number of ranks but is not.
    NotDivisible,
    /// A count or displacement does not fit MPI's `int` (`i32`).
    CountOverflow,
    /// A partition or split was described with impossible parameters (zero ranks, zero block
    /// size, a process grid that does not match the communicator), or an array or partition
    /// is used with a communicator it was not made for.
    InvalidPartition,
    /// An index lies outside the range it must lie in.
    OutOfBounds,
    /// A rank's error could not be told apart on the other ranks (its kind did not decode,
    /// e.g. ranks built from different versions of the library), or figures sent by another
    /// rank could not be read back.
    RemoteError,
    /// A configuration value (an environment variable, a command-line option) cannot be used.
    Config,
    /// An array's shape, split or ghost width does not fit the operation (e.g. shapes that
    /// differ, an axis beyond the array's dimensions, ghosts wider than a piece).
    Shape,
    /// The program runs on fewer ranks than it needs (e.g. started without `mpirun`); see
    /// [`SpmdBuilder::min_ranks`](crate::SpmdBuilder::min_ranks).
    RankCount,
    /// Reading or writing a file failed, or a file's contents are not what they must be
    /// (a corrupt or foreign checkpoint, a report that does not parse). The underlying
    /// [`std::io::Error`] or parse error, where there is one, is the error's
    /// [`source`](std::error::Error::source).
    Io,
    /// A point-to-point tag above [`MAX_TAG`](crate::comm::MAX_TAG) (the tags above are the
    /// library's own).
    InvalidTag,
    /// A non-blocking operation or plan was used in a way it cannot be (e.g. a plan finished
    /// without being started, or used with another array).
    InvalidState,
    /// A task of a [farm](crate::farm) or an item in a [pipeline](crate::pipeline) stage
    /// failed (returned an error or panicked); the message names the task or item, the rank
    /// and the failure.
    TaskFailed,
    /// A matrix cannot be used as a solver or preconditioner needs: a zero on the diagonal
    /// (Jacobi), a zero pivot in a factorisation (ILU(0)), or a Krylov solver broke down.
    Singular,
}

impl ErrorKind {
    /// A stable small positive integer for this kind (its position in the declaration, plus
    /// one), used to tell other ranks which kind of error a rank found.
    pub(crate) fn code(self) -> i64 {
        let index = ErrorKind::ALL
            .iter()
            .position(|&k| k == self)
            .expect("every kind is in ALL");
        index as i64 + 1
    }

    pub(crate) fn from_code(code: i64) -> Option<ErrorKind> {
        let index = usize::try_from(code.checked_sub(1)?).ok()?;
        ErrorKind::ALL.get(index).copied()
    }
}

/// An error from `spmd`: a kind, the reporting rank (if known), a message and, for I/O and
/// parse failures, the underlying error.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    rank: Option<usize>,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
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
            source: None,
        }
    }

    /// An [`ErrorKind::Io`] error: `message` says what the library was doing, `source` is the
    /// failure underneath (an [`std::io::Error`], a JSON or `.npy` parse error, …).
    pub fn io(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            source: Some(Arc::new(source)),
            ..Error::new(ErrorKind::Io, message)
        }
    }

    /// The same error with `op: ` before its message, unless the message already names `op`.
    pub(crate) fn prefixed(mut self, op: &str) -> Error {
        if !self.message.starts_with(op) {
            self.message = format!("{op}: {}", self.message);
        }
        self
    }

    /// Attaches the rank that reports this error.
    pub fn on_rank(mut self, rank: usize) -> Error {
        self.rank = Some(rank);
        self
    }

    /// The kind of error, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The rank that found the problem, if MPI was running. After a failed agreement check
    /// every rank's error names the same rank: the one whose input was at fault.
    pub fn rank(&self) -> Option<usize> {
        self.rank
    }

    /// The message without the rank prefix (and without the source's text).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind)
            .field("rank", &self.rank)
            .field("message", &self.message);
        if let Some(source) = &self.source {
            s.field("source", &source.to_string());
        }
        s.finish()
    }
}

/// Errors are equal when kind, rank and message are (the source is part of the message).
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.kind == other.kind && self.rank == other.rank && self.message == other.message
    }
}

impl Eq for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(rank) = self.rank {
            write!(f, "rank {rank}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

thread_local! {
    static CATCHING_TASK_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a farm task or pipeline stage on this thread), catching a panic as that task's
/// failure: while it runs, the runtime's panic policy (end every rank) stands aside for this
/// thread and prints one line instead. A panic on another thread (inside a rayon job the task
/// started) still ends the job.
pub(crate) fn catch_task_panic<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    let outer = CATCHING_TASK_PANICS.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING_TASK_PANICS.with(|c| c.set(outer));
    result
}

/// Whether this thread is inside [`catch_task_panic`].
pub(crate) fn catching_task_panics() -> bool {
    CATCHING_TASK_PANICS.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_includes_rank_message_and_source() {
        let e = Error::new(ErrorKind::InvalidRoot, "root 5 is out of range 0..4").on_rank(2);
        assert_eq!(e.to_string(), "rank 2: root 5 is out of range 0..4");
        assert_eq!(e.kind(), ErrorKind::InvalidRoot);
        assert_eq!(e.rank(), Some(2));
        assert!(e.source().is_none());
        let plain = Error::new(ErrorKind::Config, "bad");
        assert_eq!(plain.to_string(), "bad");
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let io = Error::io("checkpoint: cannot read /x/CURRENT", missing);
        assert_eq!(io.kind(), ErrorKind::Io);
        assert_eq!(
            io.to_string(),
            "checkpoint: cannot read /x/CURRENT: no such file"
        );
        let source = io.source().expect("an I/O error keeps its source");
        let source = source
            .downcast_ref::<std::io::Error>()
            .expect("the source is the io::Error itself");
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn every_kind_has_a_code_that_round_trips() {
        for &kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
        let n = ErrorKind::ALL.len() as i64;
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(-1), None);
        assert_eq!(ErrorKind::from_code(n + 1), None);
        // New kinds go last, so the codes of the older ones never change.
        assert_eq!(ErrorKind::from_code(n), Some(ErrorKind::Singular));
    }
}
