// The floor: a process that starts tokio and exits.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("ok");
}
