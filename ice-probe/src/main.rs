use clap::Parser;

fn main() {
    let cli = match ice_probe::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let line = common::cli_error::one_line(&e.render().to_string());
            eprintln!("ice-probe: {line} (see --help)");
            std::process::exit(ice_probe::exit::USAGE);
        }
    };
    std::process::exit(ice_probe::cli::run(cli));
}
