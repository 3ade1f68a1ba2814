//! Runs the derive-user program as one rank (no launcher) and, when `mpirun` is there, on two
//! ranks; each run checks its own answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROGRAM: &str = env!("CARGO_BIN_EXE_spmd-derive-user");

/// Runs `command`, killing it after a minute; returns whether it exited 0 and its stdout.
fn run(mut command: Command) -> (bool, String) {
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = command.spawn().expect("start the program");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            use std::io::Read;
            child
                .stdout
                .take()
                .expect("stdout piped")
                .read_to_string(&mut out)
                .expect("read stdout");
            return (status.success(), out);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{command:?} hung for a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_rank_without_a_launcher() {
    let (ok, out) = run(Command::new(PROGRAM));
    assert!(ok && out.contains("verified"), "{out}");
}

#[test]
fn two_ranks_under_mpirun() {
    let mut command = Command::new("mpirun");
    command
        .args(["-n", "2", PROGRAM])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    let (ok, out) = run(command);
    assert!(
        ok && out.contains("2 ranks") && out.contains("verified"),
        "{out}"
    );
}
