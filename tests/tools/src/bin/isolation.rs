//! `make test-isolation URL=http://host:port`: runs the isolation suite
//! against a running a2a-sandbox (with the `hostile` fixture loaded) and
//! prints its report. Exits 1 if any attack had an unexpected outcome.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!(
            "usage: isolation http://HOST:PORT   (the control API of a server with the hostile fixture)"
        );
        std::process::exit(2);
    };
    match a2a_sandbox_tests::isolation::run(url.trim_end_matches('/')).await {
        Ok(report) => {
            println!("{}", report.render());
            std::process::exit(if report.passed() { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("isolation suite could not run: {e}");
            std::process::exit(2);
        }
    }
}
