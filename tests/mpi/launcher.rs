//! Launching programs under `mpirun` with a timeout, so a deadlock fails a test instead of
//! hanging the suite.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What one launch produced.
pub struct Outcome {
    /// The exit code, `None` if killed by a signal or by the timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}{} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.elapsed.as_secs_f64(),
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

fn tail(text: &str) -> &str {
    let limit = 6000;
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The MPI implementation behind `mpirun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    OpenMpi,
    Mpich,
}

pub fn flavor() -> Flavor {
    static FLAVOR: OnceLock<Flavor> = OnceLock::new();
    *FLAVOR.get_or_init(|| {
        let out = Command::new("mpirun")
            .arg("--version")
            .output()
            .expect("`mpirun` not found: run scripts/setup to install MPI");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("Open MPI") || text.contains("OpenRTE") {
            Flavor::OpenMpi
        } else {
            Flavor::Mpich
        }
    })
}

/// A launcher to use instead of `mpirun` (same arguments), e.g. the one `scripts/multihost`
/// writes to spread the ranks over several hosts.
pub const MPIRUN_ENV: &str = "SPMD_TEST_MPIRUN";

/// `mpirun -n ranks [extra] program args…` with the flags this machine needs (root,
/// oversubscription) and `env` added; [`MPIRUN_ENV`] names another launcher.
pub fn mpirun(
    ranks: usize,
    extra: &[&str],
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Command {
    let launcher = std::env::var_os(MPIRUN_ENV).unwrap_or_else(|| "mpirun".into());
    let mut cmd = Command::new(launcher);
    cmd.arg("-n").arg(ranks.to_string());
    if flavor() == Flavor::OpenMpi {
        // More ranks than cores must work here; as root Open MPI refuses to start without these.
        cmd.arg("--oversubscribe");
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1");
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    cmd.args(extra).arg(program).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` to completion or until `timeout`, then kills its whole process group.
pub fn run(mut cmd: Command, timeout: Duration) -> Outcome {
    let dir = scratch_dir();
    let id = format!("{}-{}", std::process::id(), next_id());
    let out_path = dir.join(format!("{id}.out"));
    let err_path = dir.join(format!("{id}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        // Its own process group, so the timeout can end mpirun *and* every rank it started.
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("failed to start mpirun");
    let pgid = child.id() as i32;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mpirun") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            kill_group(pgid);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    // Ranks left behind by a crashed launcher would keep the cores busy.
    kill_group(pgid);
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let outcome = Outcome {
        code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        timed_out,
        elapsed,
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    outcome
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for this
    // launch; it has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mpi-launches");
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The path of a built example, next to this test binary's directory.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/mpi-hash -> target/<profile>/examples/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "example {name} is not built at {}: `cargo test` builds examples; \
         with a filtered run use `cargo build --examples` first",
        path.display()
    );
    path
}
