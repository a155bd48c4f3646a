//! The `charla-loadgen` binary: parse the command line, build a tokio
//! runtime sized to the CPUs this process may use (one when `taskset` pins
//! it), run one scenario, print its result as one JSON line on stdout.
//! Progress goes to stderr.

use charla_loadgen::{Options, Scenario};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

/// Load generator for Charla (and the Socket.IO peer it is compared with).
#[derive(Debug, Parser)]
#[command(name = "charla-loadgen", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    options: Options,

    /// Runtime worker threads (default: the CPUs this process may run on).
    #[arg(long)]
    threads: Option<usize>,

    /// Exit with status 1 when anything was lost, duplicated or refused.
    #[arg(long)]
    strict: bool,

    #[command(subcommand)]
    scenario: Scenario,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("charla-loadgen: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(charla_loadgen::run(&cli.options, &cli.scenario)) {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", report.to_json_line());
            if cli.strict && !report.is_clean() {
                eprintln!("charla-loadgen: the run was not clean");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("charla-loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}
