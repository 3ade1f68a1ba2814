//! A program whose crate depends on `spmd` alone (no direct `mpi` dependency) and sends its
//! own struct type: `#[derive(Equivalence)]` through spmd's re-export, with the
//! `#[mpi(crate = "::spmd::mpi")]` attribute telling the derive where `mpi` lives.
//!
//! Every rank contributes a particle; the closure reduction keeps the heaviest, and every
//! rank checks the answer against what it computes alone. Exit 1 if wrong.

use spmd::prelude::*;
use spmd::Spmd;

/// A user type moved by MPI as one structured datatype.
#[derive(Equivalence, Clone, Copy, Debug, Default, PartialEq)]
#[mpi(crate = "::spmd::mpi")]
struct Particle {
    mass: f64,
    position: [f64; 3],
    id: u32,
}

fn particle(rank: usize) -> Particle {
    let r = rank as f64;
    Particle {
        mass: 1.0 + (r * 7.0) % 5.0,
        position: [r, -r, 0.5 * r],
        id: rank as u32,
    }
}

fn heavier(a: Particle, b: Particle) -> Particle {
    if b.mass > a.mass || (b.mass == a.mass && b.id < a.id) {
        b
    } else {
        a
    }
}

fn main() -> spmd::Result<()> {
    let spmd = Spmd::init()?;
    let world = spmd.world();
    let heaviest = world.all_reduce_with(particle(world.rank()), heavier);
    let expected = (1..world.size()).map(particle).fold(particle(0), heavier);
    let everyone = world.all_gather(&[particle(world.rank())])?;
    let ok =
        heaviest == expected && everyone == (0..world.size()).map(particle).collect::<Vec<_>>();
    if spmd.is_root() {
        println!(
            "derive-user: {} ranks, heaviest particle {} (mass {}): {}",
            world.size(),
            heaviest.id,
            heaviest.mass,
            if ok { "verified" } else { "WRONG" }
        );
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
