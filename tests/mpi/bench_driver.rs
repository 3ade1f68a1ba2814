//! The criterion leader/follower driver: it ends, every rank runs the same iterations, and
//! the time recorded is the slowest rank's.

use std::time::Duration;

use criterion::Criterion;
use spmd::bench::MpiBencher;
use spmd::ErrorKind;

use crate::harness::{succeeds, trial, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

/// Rank 1 sleeps this long per iteration; the others do not.
const NAP: Duration = Duration::from_micros(300);

static BENCH_DRIVER: Scenario = Scenario {
    name: "bench_driver",
    run,
};

pub const MODULE: Module = Module {
    scenarios: &[&BENCH_DRIVER],
    trials: || {
        [2, 3]
            .into_iter()
            .map(|ranks| {
                trial(format!("bench_driver_np{ranks}"), move || {
                    succeeds(&BENCH_DRIVER, ranks, &[], &[])
                })
            })
            .collect()
    },
};

fn run() {
    let spmd = init();
    let world = spmd.world();
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("criterion-np{}", world.size()));
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(150))
        .without_plots()
        .output_directory(&out);
    let rank = world.rank();
    let mut bencher = MpiBencher::new(world);
    bencher.add("driver", "slow rank 1", move |iters| {
        if rank == 1 {
            for _ in 0..iters {
                std::thread::sleep(NAP);
            }
        }
    });
    bencher.add_bytes("driver", "all_reduce", 8, move |iters| {
        for _ in 0..iters {
            std::hint::black_box(world.all_reduce(1_u64, spmd::Op::Sum));
        }
    });
    let measured = bencher.run(&mut criterion).expect("the driver runs");
    // Every rank ran exactly the iterations rank 0 asked for; only rank 0 has the samples.
    for m in &measured {
        assert_eq!(m.per_iteration_s.is_some(), rank == 0, "{}", m.id);
        let all = world.all_gather(&[m.iterations]).unwrap();
        assert!(
            all.iter().all(|&n| n == all[0] && n > 0),
            "{}: iterations per rank {all:?}",
            m.id
        );
    }
    if rank == 0 {
        let slow = &measured[0];
        let per_iteration = slow.seconds / slow.iterations as f64;
        // Rank 0 never sleeps: the recorded time is rank 1's.
        assert!(
            per_iteration >= 0.9 * NAP.as_secs_f64(),
            "recorded {per_iteration} s per iteration, less than rank 1's nap"
        );
        // The same samples, summarised as the timing report summarises repetitions.
        let spread = slow.per_iteration_s.expect("rank 0 has the samples");
        assert!(spread.samples >= 2, "{spread:?}");
        assert!(
            spread.min >= 0.9 * NAP.as_secs_f64() && spread.min <= spread.median,
            "{spread:?}"
        );
        let estimates = out
            .join("driver")
            .join("slow rank 1")
            .join("new")
            .join("estimates.json");
        assert!(
            estimates.exists(),
            "criterion wrote no estimates at {}",
            estimates.display()
        );
    }
    // Ranks that registered different kernels get the same error, before anything runs.
    let mut odd = MpiBencher::new(world);
    odd.add("driver", "one", |_| {});
    if rank == 0 {
        odd.add("driver", "two", |_| {});
    }
    if world.size() > 1 {
        expect_same_error(
            world,
            "different kernels",
            odd.run(&mut criterion),
            ErrorKind::Disagreement,
        );
    }
    report_ok("bench_driver", &spmd);
}
