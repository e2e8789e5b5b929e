//! Build script shared by the function binaries (and perf's echo baseline, so the comparison
//! stays like for like): how they are linked.
//!
//! They are position-independent executables, as Rust builds them by default: the address of
//! a function that faces the internet is randomised like its libraries', heap and stack. A
//! PIE is relocated by the dynamic loader at every start, which the cold-start bench shows
//! as a small part of a cold start beside Lambda's own init. Whoever measures that and
//! chooses the fixed address instead can build with `STUDIO_ROUTER_NO_PIE=1`, which links
//! with `-no-pie`.

fn main() {
    println!("cargo::rerun-if-env-changed=STUDIO_ROUTER_NO_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let no_pie = std::env::var_os("STUDIO_ROUTER_NO_PIE").is_some_and(|v| v == "1");
    if linux && no_pie {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
