//! The registry that drives both sides of the suite, and the checks shared by the modules.
//!
//! A [`Scenario`] is a program the ranks run (a name and a function). A test module declares
//! its scenarios and the trials that launch them in one [`Module`] constant, so a new
//! scenario is added in its module only: define it, list it in the module's `scenarios`, and
//! launch it from the module's `trials`. The launching side finds programs by the same
//! constant, the rank side by the name in [`SCENARIO_ENV`].

use std::path::PathBuf;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};

use crate::launcher::{mpirun, run, Outcome};

/// Names the scenario a launched copy of this binary runs as a rank.
pub const SCENARIO_ENV: &str = "SPMD_TEST_SCENARIO";
/// Generous for 4 oversubscribed ranks on 2 busy cores; a deadlock still fails well inside it.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(120);
/// A panic or the watchdog must end the whole job at least this fast.
pub const ABORT_DEADLINE: Duration = Duration::from_secs(30);

/// A program the ranks run.
pub struct Scenario {
    pub name: &'static str,
    pub run: fn(),
}

/// A test module: the scenarios its ranks run and the trials that launch them.
pub struct Module {
    pub scenarios: &'static [&'static Scenario],
    pub trials: fn() -> Vec<Trial>,
}

/// Rank side: runs the scenario `name`.
///
/// # Panics
/// If no module has a scenario of that name.
pub fn run_scenario(modules: &[&Module], name: &str) {
    let scenario = modules
        .iter()
        .flat_map(|m| m.scenarios)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("unknown scenario {name:?}"));
    (scenario.run)();
}

/// A trial named `name` that passes when `check` returns `Ok`.
pub fn trial(
    name: impl Into<String>,
    check: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Trial {
    Trial::test(name, move || check().map_err(Failed::from))
}

/// One trial per rank count: `<scenario>_np<ranks>`, each expecting success.
pub fn at_ranks(scenario: &'static Scenario, ranks: impl IntoIterator<Item = usize>) -> Vec<Trial> {
    ranks
        .into_iter()
        .map(|p| {
            trial(format!("{}_np{p}", scenario.name), move || {
                succeeds(scenario, p, &[], &[])
            })
        })
        .collect()
}

pub fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current exe")
}

/// Launches `scenario` on `ranks` ranks with extra `mpirun` flags and environment.
pub fn launch(scenario: &Scenario, ranks: usize, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut all_env = vec![(SCENARIO_ENV, scenario.name)];
    all_env.extend_from_slice(env);
    run(
        mpirun(ranks, extra, &self_exe(), &[], &all_env),
        LAUNCH_TIMEOUT,
    )
}

/// Launches and expects success.
pub fn succeeds(
    scenario: &Scenario,
    ranks: usize,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<(), String> {
    expect_success(scenario, ranks, &launch(scenario, ranks, extra, env))
}

/// Exit 0 and exactly one success line per rank.
pub fn expect_success(scenario: &Scenario, ranks: usize, out: &Outcome) -> Result<(), String> {
    let done = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("spmd-test ok: {} ", scenario.name)))
        .count();
    if out.code == Some(0) && done == ranks {
        Ok(())
    } else {
        Err(format!(
            "expected exit 0 and {ranks} success lines, found {done}: {}",
            out.describe()
        ))
    }
}

/// Non-zero exit, quickly, with the panic message and (with > 1 rank) the abort notice.
pub fn expect_panic_abort(ranks: usize, out: &Outcome) -> Result<(), String> {
    let text = expect_aborted_in_time(out)?;
    let problems = [
        (
            !text.contains("deliberate panic on rank"),
            "the panic message is missing",
        ),
        (
            ranks > 1 && !text.contains("panicked (thread"),
            "the abort notice naming the rank is missing",
        ),
    ];
    match problems.iter().find(|(bad, _)| *bad) {
        None => Ok(()),
        Some((_, what)) => Err(format!("{what}: {}", out.describe())),
    }
}

/// The job ended by itself, non-zero, within [`ABORT_DEADLINE`]; returns its output.
pub fn expect_aborted_in_time(out: &Outcome) -> Result<String, String> {
    let problems = [
        (out.timed_out, "the job hung"),
        (out.code == Some(0), "the job exited 0"),
        (out.elapsed > ABORT_DEADLINE, "the job took too long to end"),
    ];
    match problems.iter().find(|(bad, _)| *bad) {
        None => Ok(format!("{}{}", out.stdout, out.stderr)),
        Some((_, what)) => Err(format!("{what}: {}", out.describe())),
    }
}

/// The number of cores this machine has.
pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs Python `script` with `args` in a Python that imports `module` (`python3`, else the
/// system's `/usr/bin/python3`): `Ok` if it succeeds, or, when no Python has `module`, with a
/// note on stderr naming the Debian package to install (`package`); `Err` with its stderr if
/// it fails.
pub fn python_check(
    module: &str,
    package: &str,
    script: &str,
    args: impl IntoIterator<Item = String>,
) -> Result<(), String> {
    let import = format!("import {module}");
    let python = ["python3", "/usr/bin/python3"].into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", &import])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        eprintln!("{module} not found (apt-get install {package}): the {module} check is skipped");
        return Ok(());
    };
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{module} check failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
