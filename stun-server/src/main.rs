use std::io::IsTerminal;

use clap::Parser;
use stun_server::{Args, ServerConfig};

fn main() {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let line = common::cli_error::one_line(&e.render().to_string());
            eprintln!("stun-server: {line} (see --help)");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match ServerConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stun-server: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stun-server: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(stun_server::run(config)) {
        eprintln!("stun-server: {e:#}");
        std::process::exit(1);
    }
}
