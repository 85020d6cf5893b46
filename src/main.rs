//! The `tinyprom` binary: parse the configuration, bind, serve until SIGTERM/SIGINT.
//! Everything else lives in the library.

use std::process::ExitCode;
use std::time::Duration;

use tinyprom::config::{self, Command};
use tinyprom::http::Server;

fn main() -> ExitCode {
    let command = config::parse(std::env::args().skip(1), |name| std::env::var(name).ok());
    let config = match command {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("tinyprom {}", tinyprom::VERSION);
            return ExitCode::SUCCESS;
        }
        Ok(Command::HealthCheck(config)) => {
            return match tinyprom::health::check(config.listen_address, Duration::from_secs(2)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tinyprom: health check failed: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Err(e) => {
            eprintln!("tinyprom: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = match tinyprom::signals::install() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("tinyprom: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("tinyprom: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "tinyprom {} listening on http://{} with {} workers, metrics at {}",
        tinyprom::VERSION,
        server.local_addr(),
        server.workers(),
        config.telemetry_path
    );
    match server.run(stop) {
        Ok(()) => {
            eprintln!("tinyprom: shut down cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tinyprom: {e}");
            ExitCode::from(1)
        }
    }
}
