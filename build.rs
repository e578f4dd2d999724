//! Compiles the fixtures (`fixtures/main.rs`, std only) into one binary in `OUT_DIR`,
//! hard-linked once per fixture name, so that a downstream `cargo test` gets every
//! fixture from the dev-dependency alone, with no install step.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=fixtures");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = out.join("fixtures");
    fs::create_dir_all(&dir).expect("create OUT_DIR/fixtures");
    let binary = dir.join("orphan-check-fixture");

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "bin",
        "--crate-name",
        "orphan_check_fixture",
    ])
    .args([
        "-C",
        "opt-level=1",
        "-C",
        "debuginfo=0",
        "-C",
        "strip=symbols",
    ])
    .arg(manifest.join("fixtures/main.rs"))
    .arg("-o")
    .arg(&binary);
    if let (Ok(target), Ok(host)) = (env::var("TARGET"), env::var("HOST")) {
        if target != host {
            cmd.args(["--target", &target]);
        }
    }
    let status = cmd.status().expect("run rustc for the fixtures");
    assert!(status.success(), "compiling fixtures/main.rs failed");

    let catalog = fs::read_to_string(manifest.join("fixtures/catalog.tsv")).expect("catalog.tsv");
    for name in catalog
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|n| !n.is_empty())
    {
        link(&binary, &dir.join(name));
    }
}

/// Hard link (falls back to a copy across filesystems), replacing a stale one.
fn link(binary: &Path, to: &Path) {
    let _ = fs::remove_file(to);
    if fs::hard_link(binary, to).is_err() {
        fs::copy(binary, to).expect("copy fixture binary");
    }
}
