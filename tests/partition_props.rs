//! Property tests of the partition index math over many random `(len, parts, block)`.

use proptest::prelude::*;
use spmd::{Distribution, Partition};

fn distributions() -> impl Strategy<Value = Distribution> {
    prop_oneof![
        Just(Distribution::Block),
        Just(Distribution::Cyclic),
        (1_usize..20).prop_map(Distribution::BlockCyclic),
    ]
}

/// The owner of every index straight from the definition of each distribution.
fn reference_owner(distribution: Distribution, len: usize, parts: usize, g: usize) -> usize {
    match distribution {
        Distribution::Block => {
            // Walk the balanced sizes: the first len % parts parts have one more.
            let mut start = 0;
            for rank in 0..parts {
                let size = len / parts + usize::from(rank < len % parts);
                if g < start + size {
                    return rank;
                }
                start += size;
            }
            unreachable!("index beyond the last part")
        }
        Distribution::Cyclic => g % parts,
        Distribution::BlockCyclic(b) => (g / b) % parts,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_index_owned_exactly_once(len in 0_usize..300, parts in 1_usize..12, d in distributions()) {
        let p = Partition::new(d, len, parts).unwrap();
        let mut seen = vec![0_u32; len];
        for rank in 0..parts {
            let mut previous = None;
            for (local, g) in p.global_indices(rank).enumerate() {
                seen[g] += 1;
                prop_assert_eq!(p.to_local(g), (rank, local));
                prop_assert_eq!(p.owner(g), reference_owner(d, len, parts, g));
                // Local order follows global order.
                prop_assert!(previous.is_none_or(|prev| prev < g));
                previous = Some(g);
            }
        }
        prop_assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn counts_sum_and_displacements_prefix(len in 0_usize..10_000, parts in 1_usize..64, d in distributions()) {
        let p = Partition::new(d, len, parts).unwrap();
        let counts = p.counts();
        prop_assert_eq!(counts.iter().sum::<usize>(), len);
        prop_assert_eq!(p.max_count(), counts.iter().copied().max().unwrap());
        let displacements = p.displacements();
        prop_assert_eq!(displacements[0], 0);
        for r in 1..parts {
            prop_assert_eq!(displacements[r], displacements[r - 1] + counts[r - 1]);
        }
        if d == Distribution::Block {
            // Balanced, larger parts first.
            prop_assert!(counts.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
        }
    }

    #[test]
    fn round_trips_hold(len in 1_usize..100_000, parts in 1_usize..100, d in distributions(), pick in any::<usize>()) {
        let p = Partition::new(d, len, parts).unwrap();
        let g = pick % len;
        let (rank, local) = p.to_local(g);
        prop_assert_eq!(p.to_global(rank, local), g);
        prop_assert!(local < p.count(rank));
    }
}
