//! Point-to-point messages, immediate collectives, persistent plans and split-phase halos:
//! every result against the blocking form or a value computed independently on each rank,
//! requests completed in any order, bad input, a dropped request, and a watched wait.

use ndarray::Array3;
use spmd::array::{Boundary, DistArray, Split};
use spmd::comm::{Source, TagFilter};
use spmd::{Comm, ErrorKind, Op};

use crate::harness::{at_ranks, expect_aborted_in_time, launch, succeeds, trial, Module, Scenario};
use crate::support::{expect_same_error, init, report_ok};

pub static POINT_TO_POINT: Scenario = Scenario {
    name: "point_to_point",
    run: point_to_point,
};
pub static IMMEDIATE_COLLECTIVES: Scenario = Scenario {
    name: "immediate_collectives",
    run: immediate_collectives,
};
pub static SPLIT_PHASE_HALOS: Scenario = Scenario {
    name: "split_phase_halos",
    run: split_phase_halos,
};
pub static DROPPED_REQUEST: Scenario = Scenario {
    name: "dropped_request",
    run: dropped_request,
};
pub static STUCK_WAIT: Scenario = Scenario {
    name: "stuck_wait",
    run: stuck_wait,
};

pub const MODULE: Module = Module {
    scenarios: &[
        &POINT_TO_POINT,
        &IMMEDIATE_COLLECTIVES,
        &SPLIT_PHASE_HALOS,
        &DROPPED_REQUEST,
        &STUCK_WAIT,
    ],
    trials,
};

fn trials() -> Vec<libtest_mimic::Trial> {
    let mut trials = at_ranks(&POINT_TO_POINT, 1..=4);
    // Chunks of 1000 elements: messages of several MPI messages, and exact multiples.
    trials.push(trial("point_to_point_chunked_np3", || {
        succeeds(
            &POINT_TO_POINT,
            3,
            &[],
            &[("SPMD_MAX_MESSAGE_ELEMENTS", "1000")],
        )
    }));
    trials.extend(at_ranks(&IMMEDIATE_COLLECTIVES, 1..=4));
    trials.extend(at_ranks(&SPLIT_PHASE_HALOS, 1..=4));
    trials.push(trial("dropped_request_panics_np2", || {
        let out = launch(&DROPPED_REQUEST, 2, &[], &[]);
        let text = expect_aborted_in_time(&out)?;
        if text.contains("a request of receive_immediate on rank 0 was dropped before it completed")
        {
            Ok(())
        } else {
            Err(format!(
                "no message naming the dropped request: {}",
                out.describe()
            ))
        }
    }));
    trials.push(trial("watchdog_names_stuck_wait_np2", || {
        let out = launch(&STUCK_WAIT, 2, &[], &[("SPMD_WATCHDOG", "2")]);
        let text = expect_aborted_in_time(&out)?;
        if text.contains("spmd watchdog: rank 1 of 2 has been in wait on receive_immediate") {
            Ok(())
        } else {
            Err(format!(
                "no watchdog line naming the wait: {}",
                out.describe()
            ))
        }
    }));
    trials
}

/// What rank `r` sends in the ring tests: `len` values that name sender and position.
fn message(r: usize, len: usize) -> Vec<u64> {
    (0..len as u64).map(|i| 1_000_000 * r as u64 + i).collect()
}

fn point_to_point() {
    let spmd = init();
    let world = spmd.world();
    let (r, p) = (world.rank(), world.size());
    let (right, left) = ((r + 1) % p, (r + p - 1) % p);

    // Blocking ring, both orders so that no rank waits for itself; lengths around the chunk
    // size of the chunked trial (1000) and its multiples.
    for len in [0, 1, 999, 1000, 2500, 3000] {
        if p == 1 {
            // A blocking send to oneself would wait for its own receive.
            let outgoing = world.send_immediate(0, 3, message(0, len)).unwrap();
            assert_eq!(world.receive::<u64>(0, 3).unwrap().0, message(0, len));
            outgoing.wait().unwrap();
        } else if r % 2 == 0 {
            world.send(right, 3, &message(r, len)).unwrap();
            let (got, status) = world.receive::<u64>(left, 3).unwrap();
            assert_eq!(
                (got, status.source, status.count),
                (message(left, len), left, len)
            );
        } else {
            let mut buffer = vec![0_u64; len + 5];
            let status = world.receive_into(left, 3, &mut buffer).unwrap();
            assert_eq!(status.count, len);
            assert_eq!(buffer[..len], message(left, len)[..]);
            world.send(right, 3, &message(r, len)).unwrap();
        }
    }

    // send_receive around the ring (also with one rank: to itself).
    let mut incoming = vec![0_u64; 2500];
    let status = world
        .send_receive(&message(r, 2500), right, 4, &mut incoming, left, 4)
        .unwrap();
    assert_eq!((status.source, status.tag, status.count), (left, 4, 2500));
    assert_eq!(incoming, message(left, 2500));

    // Any source, any tag, probe: rank 0 collects one message from every other rank.
    if r == 0 {
        let mut seen = vec![false; p];
        for _ in 1..p {
            let probed = world.probe::<u64>(Source::Any, TagFilter::Any).unwrap();
            // Another sender's message may arrive between the probe and an any-source
            // receive: take the probed one.
            let (got, status) = world.receive::<u64>(probed.source, probed.tag).unwrap();
            assert_eq!((probed.source, probed.count), (status.source, status.count));
            assert_eq!(status.tag as usize, 100 + status.source);
            assert_eq!(got, message(status.source, status.source * 10));
            seen[status.source] = true;
        }
        assert!(seen[1..].iter().all(|&s| s));
        assert_eq!(
            world.try_probe::<u64>(Source::Any, TagFilter::Any).unwrap(),
            None
        );
    } else {
        world.send(0, 100 + r as u32, &message(r, r * 10)).unwrap();
    }
    world.barrier();

    // Immediate ring, completed in the reverse order of posting, and tested before waiting.
    let outgoing = world.send_immediate(right, 5, message(r, 2500)).unwrap();
    let mut incoming = world.receive_immediate(left, 5, vec![0_u64; 2500]).unwrap();
    while !incoming.test() {
        std::hint::spin_loop();
    }
    let (got, status) = incoming.wait().unwrap();
    assert_eq!((got, status.source), (message(left, 2500), left));
    assert_eq!(outgoing.wait().unwrap(), message(r, 2500));
    // A receive buffer longer than the message comes back truncated to it.
    let outgoing = world.send_immediate(right, 6, message(r, 7)).unwrap();
    let incoming = world.receive_immediate(left, 6, vec![0_u64; 50]).unwrap();
    assert_eq!(incoming.wait().unwrap().0, message(left, 7));
    outgoing.wait().unwrap();

    // Bad input is an error on the calling rank.
    let e = world.send(p, 1, &[1_u8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRoot, "{e}");
    assert!(
        e.to_string().contains(&format!("rank {p} is outside")),
        "{e}"
    );
    let e = world
        .send(right, spmd::comm::MAX_TAG + 1, &[1_u8])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidTag, "{e}");
    let e = world.receive::<u8>(p + 3, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRoot, "{e}");
    // A buffer too short: an error, and the message stays queued for a proper receive.
    // (Immediate sends: a blocking send to oneself may wait for its receive under MPICH.)
    let outgoing = world.send_immediate(right, 8, message(r, 20)).unwrap();
    let mut short = [0_u64; 10];
    let e = world.receive_into(left, 8, &mut short).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BufferSize, "{e}");
    assert_eq!(world.receive::<u64>(left, 8).unwrap().0, message(left, 20));
    outgoing.wait().unwrap();
    // The same with an immediate receive: the error comes from wait.
    let outgoing = world.send_immediate(right, 9, message(r, 20)).unwrap();
    let e = world
        .receive_immediate(left, 9, vec![0_u64; 10])
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BufferSize, "{e}");
    outgoing.wait().unwrap();
    world.barrier();
    report_ok("point_to_point", &spmd);
}

fn immediate_collectives() {
    let spmd = init();
    for world in [spmd.world().clone(), spmd.world().unchecked()] {
        immediate_on(&world);
    }
    let world = spmd.world();
    let r = world.rank();
    // Bad input: the same error on every rank, from the post.
    if world.size() > 1 {
        let len = if r == world.size() - 1 { 4 } else { 3 };
        expect_same_error(
            world,
            "immediate_all_reduce_slice with uneven lengths",
            world.immediate_all_reduce_slice(&vec![1.0_f64; len], Op::Sum),
            ErrorKind::Disagreement,
        );
    }
    expect_same_error(
        world,
        "immediate_broadcast from a root outside",
        world.immediate_broadcast(world.size(), vec![0_u8; 4]),
        ErrorKind::InvalidRoot,
    );
    if world.size() > 1 {
        expect_same_error(
            world,
            "immediate_all_to_all not divisible",
            world.immediate_all_to_all(&vec![0_u32; world.size() + 1]),
            ErrorKind::NotDivisible,
        );
    }
    let plan = if r == 0 { 2 } else { 3 };
    let made = world.all_reduce_plan::<f64>(plan, Op::Sum);
    if world.size() > 1 {
        expect_same_error(
            world,
            "all_reduce_plan lengths",
            made,
            ErrorKind::Disagreement,
        );
    }
    report_ok("immediate_collectives", &spmd);
}

fn immediate_on(world: &Comm) {
    let (r, p) = (world.rank(), world.size());
    // Post everything first, then wait in reverse order: results equal the blocking forms.
    let scalar = world.immediate_all_reduce(r as u64 + 1, Op::Sum);
    let values: Vec<f64> = (0..5).map(|i| (r * 10 + i) as f64).collect();
    let mut nan_values = values.clone();
    if r == p / 2 {
        nan_values[2] = f64::NAN;
    }
    let sums = world.immediate_all_reduce_slice(&values, Op::Sum).unwrap();
    let maxima = world
        .immediate_all_reduce_slice(&nan_values, Op::Max)
        .unwrap();
    let root = p - 1;
    let broadcast_data = if r == root {
        vec![7_i32, 8, 9]
    } else {
        vec![0; 3]
    };
    let broadcast = world.immediate_broadcast(root, broadcast_data).unwrap();
    let gathered = world
        .immediate_all_gather(&[r as u16, 2 * r as u16])
        .unwrap();
    let uneven: Vec<u32> = (0..r as u32).collect();
    let gathered_varcount = world.immediate_all_gather_varcount(&uneven).unwrap();
    let to_all: Vec<u64> = (0..2 * p).map(|i| (100 * r + i) as u64).collect();
    let transposed = world.immediate_all_to_all(&to_all).unwrap();
    // Rank r sends d + 1 elements to rank d, all equal to 1000 r + d.
    let send_counts: Vec<usize> = (0..p).map(|d| d + 1).collect();
    let varcount_send: Vec<u64> = (0..p)
        .flat_map(|d| std::iter::repeat_n((1000 * r + d) as u64, d + 1))
        .collect();
    let mut exchanged = world
        .immediate_all_to_all_varcount(&varcount_send, &send_counts)
        .unwrap();
    while !exchanged.test() {}
    let exchanged = exchanged.wait().unwrap();
    for (s, part) in exchanged.parts().enumerate() {
        assert_eq!(part, vec![(1000 * s + r) as u64; r + 1].as_slice());
    }
    let transposed = transposed.wait().unwrap();
    for s in 0..p {
        assert_eq!(
            transposed[2 * s..2 * s + 2],
            [(100 * s + 2 * r) as u64, (100 * s + 2 * r + 1) as u64]
        );
    }
    let gathered_varcount = gathered_varcount.wait().unwrap();
    assert_eq!(gathered_varcount.counts(), (0..p).collect::<Vec<_>>());
    for (s, part) in gathered_varcount.parts().enumerate() {
        assert_eq!(part, (0..s as u32).collect::<Vec<_>>().as_slice());
    }
    let expected: Vec<u16> = (0..p).flat_map(|s| [s as u16, 2 * s as u16]).collect();
    assert_eq!(gathered.wait().unwrap(), expected);
    assert_eq!(broadcast.wait().unwrap(), vec![7, 8, 9]);
    let maxima = maxima.wait().unwrap();
    assert!(maxima[2].is_nan(), "Max propagates NaN: {maxima:?}");
    let blocking = world.all_reduce_slice(&values, Op::Max).unwrap();
    assert_eq!(maxima[..2], blocking[..2]);
    assert_eq!(
        sums.wait().unwrap(),
        world.all_reduce_slice(&values, Op::Sum).unwrap()
    );
    assert_eq!(scalar.wait().unwrap(), (p * (p + 1) / 2) as u64);

    // A plan gives what the blocking reduction gives, step after step.
    let plan = world.all_reduce_plan::<i64>(3, Op::Max).unwrap();
    let mut out = [0_i64; 3];
    for step in 0..5_i64 {
        let send = [step * r as i64, -(r as i64), step];
        plan.all_reduce_into(&send, &mut out);
        assert_eq!(
            out.to_vec(),
            world.all_reduce_slice(&send, Op::Max).unwrap()
        );
    }
}

fn split_phase_halos() {
    let spmd = init();
    let world = spmd.world();
    let p = world.size();
    // Rows, and a process grid when the ranks allow one; fixed and periodic; width 1 and 2.
    let mut splits = vec![Split::block(0)];
    if p % 2 == 0 {
        splits.push(Split::grid(&[2, p / 2]));
    }
    for split in splits {
        for boundary in [Boundary::Fixed, Boundary::Periodic] {
            for width in [1, 2] {
                let label = format!("{split:?} {boundary} width {width}");
                let make = |seed: usize| {
                    DistArray::from_fn(world, (9, 8), split, |(i, j)| {
                        (seed * 1000 + i * 8 + j) as f64
                    })
                    .unwrap()
                    .with_ghosts(width, boundary)
                    .unwrap()
                };
                // One-off begin/finish against the blocking exchange.
                let (mut blocking, mut split_phase) = (make(1), make(1));
                blocking.exchange_halos().unwrap();
                let exchange = split_phase.exchange_halos_begin().unwrap();
                assert_eq!(exchange.owned(), blocking.local(), "{label}");
                exchange.finish().unwrap();
                assert_eq!(
                    split_phase.local_with_ghosts(),
                    blocking.local_with_ghosts(),
                    "{label}"
                );
                // Writing the inner layers while the ghosts travel: the neighbours still
                // get the edge layers as they were at `begin`.
                let (mut expected, mut overlapped) = (make(4), make(4));
                expected.exchange_halos().unwrap();
                let mut exchange = overlapped.exchange_halos_begin().unwrap();
                let mut inner = exchange.inner_mut();
                // Owned less `width` layers at each end of each split axis, in padded
                // coordinates; the other axis of a row split whole (it has no ghosts).
                let owned = expected.local().dim();
                let layers = |count: usize| 2 * width..count.max(2 * width);
                let mut padded = expected.local_with_ghosts_mut();
                let mut touched = padded.slice_mut(ndarray::s![layers(owned.0), ..]);
                if split != Split::block(0) {
                    touched.slice_axis_inplace(ndarray::Axis(1), layers(owned.1).into());
                }
                assert_eq!(inner, touched, "{label}: the inner layers");
                inner.mapv_inplace(|v| -v);
                touched.mapv_inplace(|v| -v);
                exchange.finish().unwrap();
                assert_eq!(
                    overlapped.local_with_ghosts(),
                    expected.local_with_ghosts(),
                    "{label}: inner layers written during the exchange"
                );
                // A plan reused over changing data and over a second array of the pair.
                let (mut a, mut b) = (make(2), make(3));
                let mut plan = a.halo_plan().unwrap();
                for step in 0..3 {
                    let x = if step % 2 == 0 { &mut a } else { &mut b };
                    x.local_mut().mapv_inplace(|v| v + 1.0);
                    let mut expected = x.clone();
                    expected.exchange_halos().unwrap();
                    let mut exchange = plan.begin(x).unwrap();
                    let _ = exchange.test();
                    exchange.finish().unwrap();
                    assert_eq!(
                        x.local_with_ghosts(),
                        expected.local_with_ghosts(),
                        "{label} step {step}"
                    );
                }
            }
        }
    }
    // 3-D, split along the last axis (packed layers).
    let mut u = DistArray::from_fn(world, (3, 4, 7), Split::block(2), |(i, j, k)| {
        (i * 100 + j * 10 + k) as f32
    })
    .unwrap()
    .with_ghosts(1, Boundary::Periodic)
    .unwrap();
    let mut expected = u.clone();
    expected.exchange_halos().unwrap();
    u.exchange_halos_begin().unwrap().finish().unwrap();
    assert_eq!(u.local_with_ghosts(), expected.local_with_ghosts());
    // Check the periodic ghosts against the global field computed here.
    let global = Array3::from_shape_fn((3, 4, 7), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
    if let Some(range) = u.global_range(2) {
        let ghosts = u.local_with_ghosts();
        let below = (range.start + 7 - 1) % 7;
        assert_eq!(
            ghosts.index_axis(ndarray::Axis(2), 0),
            global.index_axis(ndarray::Axis(2), below)
        );
    }
    // A plan used with an array of another shape is refused.
    let mut plan = u.halo_plan().unwrap();
    let mut other: DistArray<f32, _> = DistArray::zeros(world, (3, 5, 7), Split::block(2))
        .unwrap()
        .with_ghosts(1, Boundary::Periodic)
        .unwrap();
    let e = plan.begin(&mut other).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidState, "{e}");
    report_ok("split_phase_halos", &spmd);
}

/// Rank 0 drops a receive that can never complete: the job must end with the message.
fn dropped_request() {
    let spmd = init();
    let world = spmd.world();
    if world.rank() == 0 {
        let request = world.receive_immediate(1, 77, vec![0_u8; 4]).unwrap();
        drop(request);
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Rank 1 waits for a message that rank 0 never sends: the watchdog names the wait.
fn stuck_wait() {
    let spmd = init();
    let world = spmd.world();
    if world.rank() == 1 {
        let request = world.receive_immediate(0, 78, vec![0_u8; 4]).unwrap();
        let _ = request.wait();
    } else {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
