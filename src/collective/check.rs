//! The agreement check that runs before a collective moves data.
//!
//! Every rank contributes its own argument errors and the values that must agree; one
//! `MPI_Allreduce(MAX)` of three `i64`s — the error, a hash of every value and its negation,
//! followed by the payload words of [`super::carry`] —
//! tells every rank whether anyone found bad input and whether the values agree. Besides the
//! operation's own fields (root, lengths, shapes, …) every check carries three implicit ones:
//! the operation's name, the element type and the communicator's call number, so ranks that
//! call *different* checked collectives (or the same one with another element type) meet in
//! the same reduction and get a `Disagreement` instead of a hang or a wrong answer. The
//! reduction has the same length for every operation for exactly that reason.
//!
//! Nothing else is communicated when all is well. On the error path the check spends a few
//! more collectives so that every rank's message is the same and names the ranks at fault
//! with their values.

use std::fmt::{self, Display};

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::datatype::PartitionMut;
use mpi::topology::Communicator;

use super::carry::{Carry, CARRY_WORDS, NO_CARRY};
use crate::comm::Comm;
use crate::error::{Error, ErrorKind, Result};

/// Marks "no error" in the reduced error slot (real codes are non-negative).
const NONE: i64 = -1;
/// Fields an operation may ask to agree on, besides the three implicit ones.
const MAX_FIELDS: usize = 5;

/// A value every rank must pass alike: a key compared across ranks (equal keys mean equal
/// values) and how to show the value in a message.
pub(crate) struct Field<'a> {
    /// What the value is, for messages ("the root", "the global shape").
    pub name: &'static str,
    /// Compared across ranks.
    pub key: i64,
    /// Shown on the error path only.
    pub shown: &'a dyn Display,
}

impl<'a> Field<'a> {
    /// A count, index or rank: the number itself is the key.
    pub fn number(name: &'static str, value: &'a usize) -> Field<'a> {
        Field {
            name,
            key: as_field(*value),
            shown: value,
        }
    }

    /// A value shown as `shown`, compared by `key` (a fingerprint).
    pub fn keyed(name: &'static str, key: i64, shown: &'a dyn Display) -> Field<'a> {
        Field { name, key, shown }
    }
}

/// What MPI moves: a type name and size, for the implicit element-type field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ElementType {
    name: &'static str,
    size: usize,
}

impl ElementType {
    /// The element type `T`.
    pub fn of<T>() -> ElementType {
        ElementType {
            name: std::any::type_name::<T>(),
            size: std::mem::size_of::<T>(),
        }
    }

    fn key(self) -> i64 {
        mix_words(mix_str(SEED, self.name), [self.size as u64])
    }
}

impl Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.name, self.size)
    }
}

/// What one collective call asks the check to verify.
pub(crate) struct Preflight<'a> {
    /// The operation the user called, for messages and the implicit operation field.
    pub op: &'static str,
    /// The type of the elements the call moves (`None` for calls that move no typed data).
    pub element: Option<ElementType>,
    /// An error this rank found in its own arguments.
    pub local_error: Option<Error>,
    /// Values that must be equal on every rank (at most [`MAX_FIELDS`]).
    pub agree: &'a [Field<'a>],
}

impl Comm {
    /// Runs the agreement check for `preflight`, or, with checks off, just returns this rank's
    /// own error. On success returns `Ok(())` on every rank; on failure the same error on
    /// every rank.
    ///
    /// # Panics
    /// If `preflight.agree` has more than [`MAX_FIELDS`] fields (a library bug).
    pub(crate) fn preflight(&self, preflight: Preflight<'_>) -> Result<()> {
        self.preflight_carrying(preflight, NO_CARRY).map(|_| ())
    }

    /// [`preflight`](Self::preflight) whose reduction also carries `carry` (see
    /// [`super::carry`]): returns the reduced payload words when the check ran and passed,
    /// `None` with checks off (no reduction: the caller moves its data itself).
    pub(crate) fn preflight_carrying(
        &self,
        preflight: Preflight<'_>,
        carry: Carry,
    ) -> Result<Option<Carry>> {
        let call = self.next_checked_call();
        if !self.agreement_checks() {
            return match preflight.local_error {
                Some(e) => Err(e.on_rank(self.rank())),
                None => Ok(None),
            };
        }
        assert!(
            preflight.agree.len() <= MAX_FIELDS,
            "{}: {} agreement fields, at most {MAX_FIELDS}",
            preflight.op,
            preflight.agree.len()
        );
        let element = preflight.element;
        let element_shown: &dyn Display = match &element {
            Some(e) => e,
            None => &"no data",
        };
        let implicit = [
            Field::keyed(
                "the operation",
                mix_str(SEED, preflight.op) >> 1,
                &preflight.op,
            ),
            Field::keyed(
                "the element type",
                element.map_or(0, ElementType::key),
                element_shown,
            ),
            Field::keyed("the call number on this communicator", as_i64(call), &call),
        ];
        let fields = || implicit.iter().chain(preflight.agree);
        // [error, h, -h] with h a hash of every field's key: MAX of -h is -(MIN of h), so one
        // reduction (88 bytes with the carried words) says whether anyone found an error and
        // whether every rank passed the same values. Which field differs is worked out on the
        // error path only.
        let h = mix_words(SEED, fields().map(|f| f.key as u64)) >> 1;
        // The same length on every rank and for every operation, payload or not.
        let mut mine = [i64::MIN; 3 + CARRY_WORDS];
        mine[..3].copy_from_slice(&[self.encode_error(preflight.local_error.as_ref()), h, -h]);
        mine[3..].copy_from_slice(&carry);
        let mut all = [0_i64; 3 + CARRY_WORDS];
        self.raw()
            .all_reduce_into(&mine[..], &mut all[..], SystemOperation::max());
        let differing = (all[1] != -all[2]).then(|| {
            let fields: Vec<&Field<'_>> = fields().collect();
            self.first_difference(&fields)
        });
        // A disagreement on the operation or element type comes first: the ranks are in
        // different calls, so their own arguments cannot be compared. When the operations
        // differ, each rank's own name would differ too: the message then starts with a name
        // they share.
        if let Some((i, described)) = &differing {
            if *i < 2 {
                let op = if *i == 0 { "collectives" } else { preflight.op };
                return Err(disagreement(op, described));
            }
        }
        if all[0] != NONE {
            return Err(self.error_from_encoded(all[0], preflight.local_error.as_ref()));
        }
        match differing {
            Some((_, described)) => Err(disagreement(preflight.op, &described)),
            None => {
                let mut carried = NO_CARRY;
                carried.copy_from_slice(&all[3..]);
                Ok(Some(carried))
            }
        }
    }

    /// The first of `fields` (in order) whose key is not the same on every rank, and every
    /// rank's description of it: the same on every rank. Collective (error path only): one
    /// all-gather of each rank's keys and shown values.
    fn first_difference(&self, fields: &[&Field<'_>]) -> (usize, Described) {
        // "name\u{1f}key\u{1f}shown" per field, fields separated by \u{1e}.
        let mine: Vec<String> = fields
            .iter()
            .map(|f| format!("{}\u{1f}{}\u{1f}{}", f.name, f.key, f.shown))
            .collect();
        let all: Vec<Vec<Vec<String>>> = self
            .all_gather_texts(&mine.join("\u{1e}"))
            .iter()
            .map(|rank| {
                rank.split('\u{1e}')
                    .map(|f| f.split('\u{1f}').map(str::to_owned).collect())
                    .collect()
            })
            .collect();
        let part = |rank: &Vec<Vec<String>>, i: usize, j: usize| {
            rank.get(i)
                .and_then(|f| f.get(j))
                .cloned()
                .unwrap_or_default()
        };
        let count = all.iter().map(Vec::len).max().unwrap_or(0);
        let i = (0..count)
            .find(|&i| {
                all.iter()
                    .any(|rank| part(rank, i, 1) != part(&all[0], i, 1))
            })
            .unwrap_or(0);
        let name = part(&all[0], i, 0);
        let values = all.iter().map(|rank| part(rank, i, 2)).collect();
        (i, Described { name, values })
    }

    /// Every rank's `text`, in rank order. Collective, raw MPI (used on error paths, where
    /// the checked helpers cannot be used).
    pub(crate) fn all_gather_texts(&self, text: &str) -> Vec<String> {
        let raw = self.raw();
        let mine = [text.len() as u64];
        let mut lengths = vec![0_u64; self.size()];
        raw.all_gather_into(&mine[..], &mut lengths[..]);
        let counts: Vec<i32> = lengths
            .iter()
            .map(|&l| i32::try_from(l).unwrap_or(i32::MAX))
            .collect();
        let displacements: Vec<i32> = counts
            .iter()
            .scan(0_i32, |at, &c| {
                let here = *at;
                *at = at.saturating_add(c);
                Some(here)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut bytes = vec![0_u8; total];
        {
            let mut parts = PartitionMut::new(&mut bytes[..], &counts[..], &displacements[..]);
            raw.all_gather_varcount_into(text.as_bytes(), &mut parts);
        }
        counts
            .iter()
            .zip(&displacements)
            .map(|(&c, &d)| {
                String::from_utf8_lossy(&bytes[d as usize..(d + c) as usize]).into_owned()
            })
            .collect()
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
        Error::new(kind, message).on_rank(culprit)
    }

    /// Shares the outcome of a step that can fail on some ranks only (file I/O, not argument
    /// checks): `Ok` on every rank if no rank passes an error, else the same error on every
    /// rank (the culprit's). Collective: one `all_reduce` of one `i64`, even with agreement
    /// checks off.
    pub(crate) fn share_outcome(&self, local: Option<Error>) -> Result<()> {
        let mine = self.encode_error(local.as_ref());
        let mut worst = NONE;
        self.raw()
            .all_reduce_into(&mine, &mut worst, SystemOperation::max());
        if worst == NONE {
            Ok(())
        } else {
            Err(self.error_from_encoded(worst, local.as_ref()))
        }
    }

    /// `local` shared with every rank ([`share_outcome`](Self::share_outcome)): its value where
    /// every rank succeeded, else the same error on every rank.
    pub(crate) fn share_result<V>(&self, local: Result<V>) -> Result<V> {
        match local {
            Ok(value) => self.share_outcome(None).map(|()| value),
            Err(e) => match self.share_outcome(Some(e)) {
                Err(shared) => Err(shared),
                Ok(()) => unreachable!("a rank's own error is always shared"),
            },
        }
    }

    /// Broadcasts the message of `culprit`'s error to every rank (error path only).
    fn share_message(&self, culprit: usize, mine: Option<&Error>) -> String {
        let mut bytes = match mine {
            Some(e) if self.rank() == culprit => e.to_string_without_rank().into_bytes(),
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

impl Error {
    /// The message and, if any, the source's text: what another rank needs to print the same.
    fn to_string_without_rank(&self) -> String {
        match std::error::Error::source(self) {
            Some(source) => format!("{}: {source}", self.message()),
            None => self.message().to_owned(),
        }
    }
}

/// One field as every rank described it.
struct Described {
    name: String,
    values: Vec<String>,
}

/// The `Disagreement` error for a field every rank described alike.
fn disagreement(op: &str, field: &Described) -> Error {
    Error::new(
        ErrorKind::Disagreement,
        format!(
            "{op}: ranks disagree on {}: {}; every rank must pass the same",
            field.name,
            describe_values(&field.values)
        ),
    )
}

/// `"rank 0 has [8, 3]; ranks 1-2 have [9, 3]"`: the ranks grouped by value, in order of the
/// first rank holding each value.
pub(crate) fn describe_values(texts: &[String]) -> String {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (rank, text) in texts.iter().enumerate() {
        match groups.iter_mut().find(|(t, _)| t == text) {
            Some((_, ranks)) => ranks.push(rank),
            None => groups.push((text, vec![rank])),
        }
    }
    groups
        .iter()
        .map(|(text, ranks)| {
            let verb = if ranks.len() == 1 { "has" } else { "have" };
            format!("{} {verb} {text}", rank_list(ranks))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `"rank 3"`, `"ranks 0-2, 5"`: ascending ranks with runs folded.
pub(crate) fn rank_list(ranks: &[usize]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ranks.len() {
        let start = ranks[i];
        let mut end = start;
        while i + 1 < ranks.len() && ranks[i + 1] == end + 1 {
            i += 1;
            end = ranks[i];
        }
        runs.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let noun = if ranks.len() == 1 { "rank" } else { "ranks" };
    format!("{noun} {}", runs.join(", "))
}

/// An `i64` for a length or rank in the check (lengths never approach `i64::MAX`).
pub(crate) fn as_field(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The starting value of [`mix_words`] and [`mix_str`].
const SEED: i64 = 0x0005_eed0_fa11_5eed;

/// Mixes 64-bit words into `h` (a multiply–rotate hash: cheap enough for the fast path of
/// every check, which hashes a dozen words).
fn mix_words(h: i64, words: impl IntoIterator<Item = u64>) -> i64 {
    words.into_iter().fold(h as u64, |h, w| {
        (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
    }) as i64
}

/// Mixes a string into `h`, eight bytes at a time, its length last.
fn mix_str(h: i64, text: &str) -> i64 {
    let chunks = text.as_bytes().chunks(8).map(|c| {
        let mut word = [0_u8; 8];
        word[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(word)
    });
    mix_words(mix_words(h, chunks), [text.len() as u64])
}

/// A 63-bit FNV-1a hash, for keys of values that are not numbers.
pub(crate) fn fingerprint(bytes: impl IntoIterator<Item = u8>) -> i64 {
    let hash = bytes.into_iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash >> 1) as i64
}

/// Shows a shape as `[8, 3]`.
pub(crate) struct ShapeText<'a>(pub &'a [usize]);

impl Display for ShapeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// The key of a shape (its number of axes included).
pub(crate) fn shape_key(dims: &[usize]) -> i64 {
    fingerprint(
        (dims.len() as u64)
            .to_le_bytes()
            .into_iter()
            .chain(dims.iter().flat_map(|d| (*d as u64).to_le_bytes())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_grouped_by_rank() {
        let texts: Vec<String> = ["[8, 3]", "[9, 3]", "[9, 3]", "[8, 3]", "[9, 3]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            describe_values(&texts),
            "ranks 0, 3 have [8, 3]; ranks 1-2, 4 have [9, 3]"
        );
        assert_eq!(
            describe_values(&["a".into(), "b".into()]),
            "rank 0 has a; rank 1 has b"
        );
    }

    #[test]
    fn rank_lists_fold_runs() {
        assert_eq!(rank_list(&[3]), "rank 3");
        assert_eq!(rank_list(&[0, 1, 2, 5, 7, 8]), "ranks 0-2, 5, 7-8");
    }

    #[test]
    fn keys_tell_shapes_and_types_apart() {
        let shapes: [&[usize]; 5] = [&[4, 6], &[6, 4], &[4, 6, 1], &[24], &[]];
        for (i, a) in shapes.iter().enumerate() {
            assert!(shape_key(a) >= 0);
            for b in &shapes[i + 1..] {
                assert_ne!(shape_key(a), shape_key(b), "{a:?} vs {b:?}");
            }
        }
        let types = [
            ElementType::of::<f64>(),
            ElementType::of::<f32>(),
            ElementType::of::<u64>(),
            ElementType::of::<i64>(),
            ElementType::of::<u8>(),
        ];
        for (i, a) in types.iter().enumerate() {
            for b in &types[i + 1..] {
                assert_ne!(a.key(), b.key(), "{a} vs {b}");
            }
        }
        assert_eq!(ElementType::of::<f64>().to_string(), "f64 (8 bytes)");
    }
}
