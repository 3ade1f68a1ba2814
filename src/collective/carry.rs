//! Small payloads carried inside the agreement check's reduction.
//!
//! Every check is one `MPI_Allreduce(MAX)` of the same length on every rank and for every
//! operation (so that ranks in different collectives still meet in it). Besides its three
//! words it carries [`CARRY_WORDS`] more, `i64::MIN` unless used: a rank's bytes placed in a
//! slot that every other rank leaves at `i64::MIN` come out of the MAX unchanged on every
//! rank. So a checked broadcast, gather, all-gather or scatter of at most 64 bytes of plain
//! numbers needs no second collective: one reduction checks the arguments and moves the data
//! (the data is used only if the check passes).

use std::mem::size_of;

/// Payload words every check carries.
pub(crate) const CARRY_WORDS: usize = 8;

/// The payload words of a check.
pub(crate) type Carry = [i64; CARRY_WORDS];

/// A check that carries nothing.
pub(crate) const NO_CARRY: Carry = [i64::MIN; CARRY_WORDS];

/// Whether values of `T` may ride in a check: the primitive integers and floats, whose every
/// byte is initialised and every bit pattern a value (the name of a primitive type cannot be
/// the name of any other type).
pub(crate) fn plain<T>() -> bool {
    matches!(
        std::any::type_name::<T>(),
        "f64"
            | "f32"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "isize"
            | "usize"
    )
}

/// Words that `len` values of `T` take.
pub(crate) fn words_for<T>(len: usize) -> usize {
    (len * size_of::<T>()).div_ceil(8)
}

/// Words per part when `parts` parts of `len` values of `T` fit in a check: `None` if they
/// do not (or `T` is not plain).
pub(crate) fn slots<T>(len: usize, parts: usize) -> Option<usize> {
    let words = words_for::<T>(len);
    (plain::<T>() && words * parts <= CARRY_WORDS).then_some(words)
}

/// A carry holding this rank's `part` in slot `rank` of `parts` equal slots, and the words
/// per slot; `(None, NO_CARRY)` if the parts do not fit.
pub(crate) fn own_slot<T>(part: &[T], rank: usize, parts: usize) -> (Option<usize>, Carry) {
    let slot = slots::<T>(part.len(), parts);
    let mut payload = NO_CARRY;
    if let Some(words) = slot {
        pack(part, &mut payload, rank * words);
    }
    (slot, payload)
}

/// Every slot of `words` words into consecutive parts of `out`, `part_len` values each.
pub(crate) fn unpack_slots<T>(carry: &Carry, words: usize, out: &mut [T], part_len: usize) {
    for (r, part) in out.chunks_mut(part_len.max(1)).enumerate() {
        unpack(carry, r * words, part);
    }
}

/// Puts `values` into `carry` from word `first` on (the caller checked they fit).
pub(crate) fn pack<T>(values: &[T], carry: &mut Carry, first: usize) {
    debug_assert!(plain::<T>());
    let mut bytes = [0_u8; CARRY_WORDS * 8];
    let n = std::mem::size_of_val(values);
    let start = first * 8;
    // SAFETY: `T` is a primitive number (checked by the callers through `plain`), so all
    // `n` bytes of `values` are initialised; `start + n` lies within `bytes` (the callers
    // check `first + words_for::<T>(values.len()) <= CARRY_WORDS`).
    unsafe {
        std::ptr::copy_nonoverlapping(
            values.as_ptr().cast::<u8>(),
            bytes.as_mut_ptr().add(start),
            n,
        );
    }
    for (k, word) in carry.iter_mut().enumerate().skip(first).take(n.div_ceil(8)) {
        let mut w = [0_u8; 8];
        w.copy_from_slice(&bytes[8 * k..8 * k + 8]);
        *word = i64::from_ne_bytes(w);
    }
}

/// Takes `out.len()` values of `T` from `carry`, from word `first` on.
pub(crate) fn unpack<T>(carry: &Carry, first: usize, out: &mut [T]) {
    debug_assert!(plain::<T>());
    let mut bytes = [0_u8; CARRY_WORDS * 8];
    for (k, word) in carry.iter().enumerate() {
        bytes[8 * k..8 * k + 8].copy_from_slice(&word.to_ne_bytes());
    }
    let n = std::mem::size_of_val(out);
    // SAFETY: `T` is a primitive number, for which every bit pattern is a value; the `n`
    // bytes from `first * 8` lie within `bytes` (checked by the callers, as for `pack`).
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr().add(first * 8),
            out.as_mut_ptr().cast::<u8>(),
            n,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_max_against_empty_slots() {
        let values = [1.5_f32, -0.0, f32::NAN, 7.25, f32::MIN];
        let mut mine = NO_CARRY;
        pack(&values, &mut mine, 2);
        // Another rank's carry: nothing in these slots.
        let reduced: Vec<i64> = mine.iter().zip(&NO_CARRY).map(|(a, b)| *a.max(b)).collect();
        let reduced: Carry = reduced.try_into().unwrap();
        let mut out = [0.0_f32; 5];
        unpack(&reduced, 2, &mut out);
        for (a, b) in out.iter().zip(&values) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_eq!(words_for::<f32>(5), 3);
        assert!(plain::<u8>() && plain::<f64>() && !plain::<(f64, f64)>() && !plain::<bool>());
    }
}
