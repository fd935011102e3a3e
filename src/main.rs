use clap::Parser;

fn main() {
    let cli = peakload::cli::Cli::parse();
    std::process::exit(peakload::cmd::main(cli));
}
