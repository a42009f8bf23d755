//! `load MODE [SESSIONS] [SECONDS]`: one fleet run of `make bench` on its
//! own (MODE is `ports` or `gateway`; 2,000 sessions and 60 s unless
//! given): a server filled with sessions of five drafters, every agent
//! sent one SendMessage a second (open loop), then the closed loops.

use a2a_sandbox_tests::load;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "gateway".into());
    let number = |arg: Option<String>, default: usize| {
        arg.map(|a| a.parse().expect("a number")).unwrap_or(default)
    };
    let sessions = number(args.next(), load::FLEET_SESSIONS);
    let seconds = number(args.next(), load::FLEET_SECONDS as usize) as u64;
    load::raise_descriptor_limit();
    let fleet = load::fleet(&mode, sessions, seconds).await;
    for (what, figure, target) in fleet.rows() {
        println!("| {what} | {figure} | {target} |");
    }
}
