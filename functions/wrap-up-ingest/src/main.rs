//! wrap-up-ingest: Flex wrap-up and completion events into Segment track events.

use studio_router::edge::functions::wrap_up_ingest;

fn main() -> std::process::ExitCode {
    studio_router::edge::main(wrap_up_ingest::load)
}
