//! profile-lookup: a customer's Segment traits for Studio widgets and Twilio Functions.

use studio_router::edge::functions::profile_lookup;

fn main() -> std::process::ExitCode {
    studio_router::edge::main(profile_lookup::load)
}
