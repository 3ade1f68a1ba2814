//! The network probe: `spmd-scale` started by a launcher with [`PROBE_ENV`] set is a 2-rank
//! ping-pong (spmd's own `send` / `receive_into`, as the programs it scales use them) that
//! writes the one-way latency and the time per byte as JSON.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use spmd::Spmd;

use crate::run::Launcher;

/// Set to a file path, `spmd-scale` runs as a probe rank and rank 0 writes [`Network`] there.
pub const PROBE_ENV: &str = "SPMD_SCALE_PROBE";

/// What one network costs a one-way message: `latency_s + bytes · seconds_per_byte`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Network {
    pub latency_s: f64,
    pub seconds_per_byte: f64,
}

/// The large message of the probe (the small one is 8 bytes).
const LARGE: usize = 1 << 20;
const ROUNDS: usize = 9;
const TAG: u32 = 91;

/// Measures the network between the first and the last of `ranks` ranks under `launcher`.
pub fn measure(
    launcher: &Launcher,
    ranks: usize,
    out: &std::path::Path,
) -> Result<Network, String> {
    let path = out.display().to_string();
    let _ = std::fs::remove_file(out);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find spmd-scale: {e}"))?;
    launcher.run_with_env(
        ranks,
        1,
        &exe.display().to_string(),
        &[],
        &[(PROBE_ENV, &path)],
    )?;
    let text = std::fs::read_to_string(out).map_err(|e| format!("the probe wrote nothing: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("the probe's {path}: {e}"))
}

/// The rank side: ping-pong between rank 0 and the last rank (the others wait), the median
/// of [`ROUNDS`] rounds per size; rank 0 writes the result to `path`.
pub fn rank(path: &str) -> Result<(), String> {
    let spmd = Spmd::init().map_err(|e| e.to_string())?;
    let world = spmd.world();
    let (me, last) = (spmd.rank(), spmd.size() - 1);
    if last == 0 {
        return Err("the probe needs at least 2 ranks".into());
    }
    let one_way = |bytes: usize, trips: usize| -> Result<f64, String> {
        let mut buffer = vec![0_u8; bytes];
        let mut rounds = Vec::with_capacity(ROUNDS);
        for round in 0..=ROUNDS {
            world.barrier();
            let start = Instant::now();
            for _ in 0..trips {
                if me == 0 {
                    world.send(last, TAG, &buffer).map_err(|e| e.to_string())?;
                    world
                        .receive_into(last, TAG, &mut buffer)
                        .map_err(|e| e.to_string())?;
                } else if me == last {
                    world
                        .receive_into(0, TAG, &mut buffer)
                        .map_err(|e| e.to_string())?;
                    world.send(0, TAG, &buffer).map_err(|e| e.to_string())?;
                }
            }
            // The first round warms the connection up.
            if round > 0 {
                rounds.push(start.elapsed().as_secs_f64() / (2 * trips) as f64);
            }
        }
        rounds.sort_by(f64::total_cmp);
        Ok(rounds[ROUNDS / 2])
    };
    let small = one_way(8, 400)?;
    let large = one_way(LARGE, 20)?;
    if me == 0 {
        let network = Network {
            latency_s: small,
            seconds_per_byte: ((large - small) / (LARGE - 8) as f64).max(0.0),
        };
        let text = serde_json::to_string(&network).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}
