//! What the NPB examples share: classes and flags, the NPB random number generator, and the
//! closing block of NPB-style output with the report.
// Each example uses a part of this module.
#![allow(dead_code)]

use clap::ValueEnum;
use spmd::timing::Report;

use crate::common::Measure;

/// An NPB problem class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Class {
    S,
    W,
    A,
    B,
}

/// The flags every NPB example takes (flattened into each example's own command).
#[derive(clap::Args, Debug)]
pub struct Flags {
    /// Problem class.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Class::S)]
    pub class: Class,
    #[command(flatten)]
    pub measure: Measure,
}

/// The NPB generator's multiplier, 5^13.
pub const MULTIPLIER: u64 = 1_220_703_125;

/// `a · x mod 2^46`, the NPB generator's step.
pub fn mul_mod(a: u64, x: u64) -> u64 {
    // The low 64 bits of the product are exact, and the modulus keeps only 46 of them.
    a.wrapping_mul(x) & ((1 << 46) - 1)
}

/// `a^e mod 2^46`: jumping ahead `e` steps of the generator.
pub fn pow_mod(mut a: u64, mut e: u64) -> u64 {
    let mut result = 1;
    while e > 0 {
        if e & 1 == 1 {
            result = mul_mod(result, a);
        }
        a = mul_mod(a, a);
        e >>= 1;
    }
    result
}

/// The generator state `x` as the uniform number `x / 2^46` (`x < 2^46`: the signed
/// conversion is one instruction).
#[inline]
pub fn uniform(x: u64) -> f64 {
    // Multiplying by 2^-46 is exact, like the division, and cheaper.
    x as i64 as f64 * (1.0 / (1u64 << 46) as f64)
}

/// The benchmark's figures for the closing block.
pub struct Results<'a> {
    pub class: String,
    pub size: String,
    pub iterations: usize,
    pub seconds: f64,
    pub mops: f64,
    pub processes: usize,
    pub threads: usize,
    pub operation: &'a str,
    pub verified: bool,
}

/// Prints the NPB closing block and the timing report, writes the JSON report if asked, and
/// turns an unsuccessful verification into an error (so the program exits non-zero).
pub fn finish(
    results: &Results<'_>,
    report: &Report,
    measure: &Measure,
) -> Result<(), Box<dyn std::error::Error>> {
    let r = results;
    println!();
    println!(" Class           = {:>24}", r.class);
    println!(" Size            = {:>24}", r.size);
    println!(" Iterations      = {:>24}", r.iterations);
    println!(" Time in seconds = {:>24.3}", r.seconds);
    if report.repetitions > 1 {
        println!(" (median of {:>8} runs)", report.repetitions);
    }
    println!(" Total processes = {:>24}", r.processes);
    println!(" Threads/process = {:>24}", r.threads);
    println!(" Mop/s total     = {:>24.2}", r.mops);
    println!(" Mop/s/process   = {:>24.2}", r.mops / r.processes as f64);
    println!(" Operation type  = {:>24}", r.operation);
    println!(
        " Verification    = {:>24}",
        if r.verified {
            "SUCCESSFUL"
        } else {
            "UNSUCCESSFUL"
        }
    );
    println!("\n{report}");
    let mut report = report.clone();
    report.record("class", &r.class);
    report.record("iterations", r.iterations);
    report.record("mops", r.mops);
    report.record("verified", r.verified);
    measure.write(&report)
}

/// The error to return when verification failed.
pub fn verdict(kernel: &str, verified: bool) -> Result<(), Box<dyn std::error::Error>> {
    if verified {
        Ok(())
    } else {
        Err(format!("{kernel} verification UNSUCCESSFUL").into())
    }
}
