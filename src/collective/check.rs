//! The agreement check that runs before a collective moves data.
//!
//! Every rank contributes its own argument errors and the values that must agree; one
//! `MPI_Allreduce(MAX)` over a few `i64`s tells every rank whether anyone found bad input and
//! whether the values agree. If some rank found an error, its message is broadcast so every
//! rank returns the same [`Error`]. Nothing else is communicated when all is well.

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::topology::Communicator;

use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

/// Marks "no error" and "not the root" in the reduced slots (real values are non-negative).
const NONE: i64 = -1;

/// What one collective call asks the check to verify.
pub(crate) struct Preflight<'a> {
    /// The collective's name, for messages.
    pub op: &'static str,
    /// An error this rank found in its own arguments.
    pub local_error: Option<Error>,
    /// Named values that must be equal on every rank.
    pub agree: &'a [(&'static str, i64)],
}

impl Comm {
    /// Runs the agreement check for `preflight`, or, with checks off, just returns this rank's
    /// own error. On success returns `Ok(())` on every rank; on failure the same error on
    /// every rank.
    pub(crate) fn preflight(&self, preflight: Preflight<'_>) -> Result<()> {
        if !self.agreement_checks() {
            return match preflight.local_error {
                Some(e) => Err(e.on_rank(self.rank() as i32)),
                None => Ok(()),
            };
        }
        let fields = preflight.agree.len();
        let mut mine = Vec::with_capacity(1 + 2 * fields);
        mine.push(self.encode_error(preflight.local_error.as_ref()));
        mine.extend(preflight.agree.iter().map(|&(_, v)| v));
        // MAX of -v is -(MIN of v): one reduction yields both ends of every field's range.
        mine.extend(preflight.agree.iter().map(|&(_, v)| -v));
        let mut all = vec![0_i64; mine.len()];
        self.raw()
            .all_reduce_into(&mine[..], &mut all[..], SystemOperation::max());

        if all[0] != NONE {
            return Err(self.error_from_encoded(all[0], preflight.local_error.as_ref()));
        }
        for (i, &(name, _)) in preflight.agree.iter().enumerate() {
            let (max, min) = (all[1 + i], -all[1 + fields + i]);
            if max != min {
                return Err(Error::new(
                    ErrorKind::Disagreement,
                    format!(
                        "{}: ranks disagree on {name}: values range from {min} to {max}, \
                         but every rank must pass the same",
                        preflight.op
                    ),
                ));
            }
        }
        Ok(())
    }

    /// This rank's argument error as one `i64` whose maximum over ranks picks one error
    /// (the highest kind code, then the highest rank); [`NONE`] when there is none.
    pub(crate) fn encode_error(&self, error: Option<&Error>) -> i64 {
        match error {
            Some(e) => (e.kind().code() << 32) | self.rank() as i64,
            None => NONE,
        }
    }

    /// The error that `encoded` (the maximum of every rank's [`encode_error`](Self::encode_error))
    /// names, with the culprit's message, identical on every rank. Collective.
    pub(crate) fn error_from_encoded(&self, encoded: i64, mine: Option<&Error>) -> Error {
        let culprit = (encoded & 0xffff_ffff) as usize;
        let kind = ErrorKind::from_code(encoded >> 32).unwrap_or(ErrorKind::RemoteError);
        let message = self.share_message(culprit, mine);
        Error::new(kind, message).on_rank(culprit as i32)
    }

    /// Broadcasts the message of `culprit`'s error to every rank (error path only).
    fn share_message(&self, culprit: usize, mine: Option<&Error>) -> String {
        let mut bytes = match mine {
            Some(e) if self.rank() == culprit => e.message().as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let root = self.raw().process_at_rank(culprit as i32);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// An `i64` for a length or rank in the check (lengths never approach `i64::MAX`).
pub(crate) fn as_field(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
