//! Whether dynalite (DynamoDB's API on LevelDB, `tests/dynalite`) is installed: the trait
//! store's tests run against it, and without it they are ignored with the reason, so the
//! README's test command reports them as skipped. Under CI they always run (and fail if it
//! is missing): `.ci/run` installs it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dynalite)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=dynalite");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let installed = std::path::Path::new(&manifest)
        .join("dynalite/node_modules/.bin/dynalite")
        .exists();
    if installed || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=dynalite");
    } else {
        println!(
            "cargo::warning=dynalite is not installed: the trait-store tests are skipped (cd tests/dynalite && npm ci, Node 20+)"
        );
    }
}
