use clap::Parser;

fn main() {
    let cli = ice_probe::cli::Cli::parse();
    std::process::exit(ice_probe::cli::run(cli));
}
