//! trait-sync: writes the traits Segment Engage computes into the trait store (DynamoDB), so
//! route-decision reads them there instead of from the Profile API.

use studio_router::edge::functions::trait_sync;

fn main() -> std::process::ExitCode {
    studio_router::edge::main(trait_sync::load)
}
