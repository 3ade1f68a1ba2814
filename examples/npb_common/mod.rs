//! What the NPB examples share: the closing block of NPB-style output and the report.

use std::path::PathBuf;

use spmd::timing::Report;

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
    path: Option<&PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let r = results;
    println!();
    println!(" Class           = {:>24}", r.class);
    println!(" Size            = {:>24}", r.size);
    println!(" Iterations      = {:>24}", r.iterations);
    println!(" Time in seconds = {:>24.3}", r.seconds);
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
    if let Some(path) = path {
        report.write_json(path)?;
    }
    Ok(())
}

/// The error to return when verification failed.
pub fn verdict(kernel: &str, verified: bool) -> Result<(), Box<dyn std::error::Error>> {
    if verified {
        Ok(())
    } else {
        Err(format!("{kernel} verification UNSUCCESSFUL").into())
    }
}
