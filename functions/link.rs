//! Build script shared by the function binaries (and perf's echo baseline, so the comparison
//! stays like for like): on Linux, link them as position-dependent executables.
//!
//! A position-independent executable is relocated by the dynamic loader at every start. For
//! route-decision that is about 12,000 relocations over 240 KB of tables, each page touched a
//! copy-on-write fault: about 0.3 ms of each cold start. Linked with `-no-pie` (Go's default
//! on Linux) the addresses are fixed at link time and there is nothing left to do. The cost
//! is that the executable's own code is not at a random address (libraries, heap and stack
//! still are). Set `STUDIO_ROUTER_PIE=1` at build time to keep the usual PIE.

fn main() {
    println!("cargo::rerun-if-env-changed=STUDIO_ROUTER_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let keep_pie = std::env::var_os("STUDIO_ROUTER_PIE").is_some_and(|v| v == "1");
    if linux && !keep_pie {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
