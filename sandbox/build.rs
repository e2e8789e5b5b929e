//! Whether dynalite is installed (`tests/dynalite`): the sandbox's `--trait-store` test runs
//! against it, and without it is ignored with the reason (reported as skipped). Under CI it
//! always runs: `.ci/run` installs dynalite.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dynalite)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=../tests/dynalite");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let installed = std::path::Path::new(&manifest)
        .join("../tests/dynalite/node_modules/.bin/dynalite")
        .exists();
    if installed || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=dynalite");
    } else {
        println!(
            "cargo::warning=dynalite is not installed: the sandbox's --trait-store test is skipped (cd tests/dynalite && npm ci, Node 20+)"
        );
    }
}
