//! Launching one run of the program under `mpirun`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which MPI the launcher belongs to: they spell "set this variable on every rank" and
/// "do not bind ranks to one core" differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    OpenMpi,
    Mpich,
}

pub struct Launcher {
    program: String,
    extra: Vec<String>,
    flavor: Flavor,
    timeout: Duration,
}

impl Launcher {
    /// Asks `mpirun --version` which MPI it is.
    pub fn detect(program: &str, extra: &str, timeout_s: u64) -> Result<Launcher, String> {
        let version = Command::new(program)
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run `{program} --version`: {e}"))?;
        let text = String::from_utf8_lossy(&version.stdout).to_string()
            + &String::from_utf8_lossy(&version.stderr);
        let flavor = if text.contains("Open MPI") || text.contains("OpenRTE") {
            Flavor::OpenMpi
        } else {
            Flavor::Mpich
        };
        Ok(Launcher {
            program: program.to_owned(),
            extra: extra.split_whitespace().map(str::to_owned).collect(),
            flavor,
            timeout: Duration::from_secs(timeout_s),
        })
    }

    /// Runs `program args` on `ranks` ranks with `threads` rayon threads each; its output
    /// passes through.
    pub fn run(
        &self,
        ranks: usize,
        threads: usize,
        program: &str,
        args: &[String],
    ) -> Result<(), String> {
        self.run_with_env(ranks, threads, program, args, &[])
    }

    /// [`run`](Self::run) with the variables `env` set on every rank.
    pub fn run_with_env(
        &self,
        ranks: usize,
        threads: usize,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<(), String> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-n").arg(ranks.to_string());
        let threads_text = threads.to_string();
        let mut all_env = vec![("SPMD_NUM_THREADS", threads_text.as_str())];
        all_env.extend_from_slice(env);
        if self.flavor == Flavor::OpenMpi && threads > 1 {
            // Bound to one core, a rank could not use its threads.
            cmd.args(["--bind-to", "none"]);
        }
        for (name, value) in &all_env {
            match self.flavor {
                Flavor::OpenMpi => cmd.args(["-x", &format!("{name}={value}")]),
                Flavor::Mpich => cmd.args(["-genv", name, value]),
            };
            cmd.env(name, value);
        }
        cmd.args(&self.extra).arg(program).args(args);
        cmd.stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        let start = Instant::now();
        loop {
            match child.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => {
                    return Err(format!(
                        "the run on {ranks} ranks x {threads} threads failed ({status})"
                    ))
                }
                None if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the run on {ranks} ranks x {threads} threads took longer than {} s; killed",
                        self.timeout.as_secs()
                    ));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
