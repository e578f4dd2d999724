//! Where the agent's program is found: exactly where `std::process::Command` would run
//! it. std changes to `current_dir` and then calls `execvp`, so a relative program path
//! and a relative `PATH` entry are the child's, relative to its working directory. The
//! harness resolves them once; resolving against the child's directory and then letting
//! the child resolve again (after its `chdir`) would run `sub/sub/tool`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use orphan_check::{KillPlan, Ready, Scenario};

/// A directory for this test under the temporary directory (writable by whoever runs
/// the suite, also an unprivileged user running a root-built archive), and the same
/// directory relative to the test's working directory (which is what `current_dir` is
/// relative to).
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let abs = std::env::temp_dir().join(format!("program-path-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&abs);
    std::fs::create_dir_all(&abs).unwrap();
    let rel = relative(&std::env::current_dir().unwrap(), &abs);
    assert!(rel.is_relative());
    (abs, rel)
}

/// `to` relative to `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    out
}

/// An executable script at `path` that says which one it is and then waits.
fn tool(path: &Path, says: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("#!/bin/sh\necho ready {says}\nexec sleep 1000\n"),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `cmd` until its ready line and returns that line; the agent (`sleep`, exec'd)
/// dies of the SIGKILL, so nothing survives.
fn ready_line(cmd: Command) -> String {
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .unwrap_or_else(|e| panic!("the tool runs: {e}"));
    let line = outcome
        .stdout()
        .lines()
        .find(|l| l.starts_with("ready"))
        .map(str::to_owned)
        .unwrap_or_default();
    outcome.assert_no_survivors(Duration::from_secs(2));
    line
}

#[test]
fn a_relative_program_is_relative_to_a_relative_current_dir_once() {
    let (abs, rel) = scratch("dot-slash");
    tool(&abs.join("sub/tool"), "sub/tool");
    // Resolved twice, it would be `<rel>/sub/<rel>/sub/tool` from here: nothing there.
    let mut cmd = Command::new("./tool");
    cmd.current_dir(rel.join("sub"));
    assert_eq!(ready_line(cmd), "ready sub/tool");
    std::fs::remove_dir_all(abs).unwrap();
}

#[test]
fn a_relative_path_entry_is_relative_to_the_childs_directory() {
    let (abs, rel) = scratch("path-entry");
    tool(&abs.join("sub/bin/tool"), "sub/bin/tool");
    // Not executable, earlier in PATH: execvp skips it (EACCES) and goes on.
    std::fs::create_dir_all(abs.join("sub/first")).unwrap();
    std::fs::write(abs.join("sub/first/tool"), "#!/bin/sh\necho ready wrong\n").unwrap();
    let mut cmd = Command::new("tool");
    cmd.current_dir(rel.join("sub"))
        .env("PATH", "first:bin:/usr/bin:/bin");
    assert_eq!(ready_line(cmd), "ready sub/bin/tool");
    std::fs::remove_dir_all(abs).unwrap();
}

#[test]
fn an_empty_path_entry_is_the_childs_directory() {
    let (abs, rel) = scratch("empty-entry");
    tool(&abs.join("sub/tool"), "sub/tool");
    let mut cmd = Command::new("tool");
    cmd.current_dir(rel.join("sub"))
        .env("PATH", "/usr/bin:/bin:");
    assert_eq!(ready_line(cmd), "ready sub/tool");
    std::fs::remove_dir_all(abs).unwrap();
}

#[test]
fn std_runs_the_same_files() {
    // The reference: what std itself runs for the same three commands.
    let (abs, rel) = scratch("std");
    for (path, says) in [
        ("sub/tool", "sub/tool"),
        ("sub/sub/tool", "sub/sub/tool"),
        ("sub/bin/tool", "sub/bin/tool"),
    ] {
        std::fs::create_dir_all(abs.join(path).parent().unwrap()).unwrap();
        std::fs::write(abs.join(path), format!("#!/bin/sh\necho ready {says}\n")).unwrap();
        std::fs::set_permissions(abs.join(path), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = |mut cmd: Command| {
        let out = cmd.output().expect("std runs it");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let mut dot = Command::new("./tool");
    dot.current_dir(rel.join("sub"));
    assert_eq!(run(dot), "ready sub/tool");
    let mut entry = Command::new("tool");
    entry
        .current_dir(rel.join("sub"))
        .env("PATH", "bin:/usr/bin:/bin");
    assert_eq!(run(entry), "ready sub/bin/tool");
    std::fs::remove_dir_all(abs).unwrap();
}
