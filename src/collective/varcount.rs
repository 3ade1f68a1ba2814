//! [`Varcount`]: data gathered from every rank with uneven counts, and who sent what.

/// What a `*_varcount` collective returns: every rank's part, one after another in rank
/// order, with each rank's count.
///
/// ```
/// # use spmd::collective::Varcount;
/// # fn show(gathered: Varcount<u32>) {
/// for (rank, part) in gathered.parts().enumerate() {
///     println!("rank {rank} sent {part:?}");
/// }
/// let counts = gathered.counts().to_vec();
/// let all: Vec<u32> = gathered.into_vec(); // the parts concatenated
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Varcount<T> {
    data: Vec<T>,
    counts: Vec<usize>,
    displacements: Vec<usize>,
}

impl<T> Varcount<T> {
    /// Wraps `data` holding parts of `counts` elements one after another.
    ///
    /// # Panics
    /// If the counts do not add up to `data.len()` (a library bug).
    pub(crate) fn new(data: Vec<T>, counts: Vec<usize>) -> Varcount<T> {
        let displacements: Vec<usize> = counts
            .iter()
            .scan(0, |at, &c| {
                let here = *at;
                *at += c;
                Some(here)
            })
            .collect();
        assert_eq!(
            counts.iter().sum::<usize>(),
            data.len(),
            "varcount counts do not cover the data"
        );
        Varcount {
            data,
            counts,
            displacements,
        }
    }

    /// How many elements each rank contributed, in rank order.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Where each rank's part starts in [`as_slice`](Self::as_slice).
    pub fn displacements(&self) -> &[usize] {
        &self.displacements
    }

    /// Rank `rank`'s part.
    ///
    /// # Panics
    /// If `rank` is not a rank of the communicator.
    #[track_caller]
    pub fn part(&self, rank: usize) -> &[T] {
        let start = self.displacements[rank];
        &self.data[start..start + self.counts[rank]]
    }

    /// Every rank's part, in rank order.
    pub fn parts(&self) -> impl ExactSizeIterator<Item = &[T]> + '_ {
        (0..self.counts.len()).map(move |rank| self.part(rank))
    }

    /// All parts, one after another.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// All parts, one after another, without copying.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The data and the counts, without copying.
    pub fn into_parts(self) -> (Vec<T>, Vec<usize>) {
        (self.data, self.counts)
    }

    /// The total number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no rank contributed anything.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_the_counts() {
        let v = Varcount::new(vec![1, 2, 3, 4, 5, 6], vec![2, 0, 3, 1]);
        assert_eq!(v.displacements(), &[0, 2, 2, 5]);
        let parts: Vec<&[i32]> = v.parts().collect();
        assert_eq!(parts, [&[1, 2][..], &[], &[3, 4, 5], &[6]]);
        assert_eq!(v.part(2), &[3, 4, 5]);
        assert_eq!((v.len(), v.is_empty()), (6, false));
        assert_eq!(
            v.clone().into_parts(),
            (vec![1, 2, 3, 4, 5, 6], vec![2, 0, 3, 1])
        );
        assert_eq!(v.into_vec(), vec![1, 2, 3, 4, 5, 6]);
    }
}
