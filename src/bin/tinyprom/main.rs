//! The `tinyprom` binary: parse the configuration, bind, then serve until SIGTERM/SIGINT
//! in a supervised child process (see [`supervisor`]). Flag parsing, the supervisor,
//! signal handling and the health check are the binary's own; the serving itself lives
//! in the library.

mod config;
mod health;
mod signals;
mod supervisor;

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use config::{Command, Config};
use tinyprom::http::{self, Server};

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
            return match health::check(config.http.listen_address, Duration::from_secs(2)) {
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
    // Before the start-up line: a SIGHUP that follows it must find the handler.
    if let Err(e) = signals::ignore_hangup() {
        eprintln!("tinyprom: cannot install the SIGHUP handler: {e}");
        return ExitCode::from(1);
    }
    // Bound here, before any fork, so the socket outlives every serving process.
    let listener = match http::bind(config.http.listen_address, config.http.read_timeout) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tinyprom: {e}");
            return ExitCode::from(1);
        }
    };
    let local_addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("tinyprom: reading the bound address: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "tinyprom {} listening on http://{} with {} workers, metrics at {}",
        tinyprom::VERSION,
        local_addr,
        config.http.max_workers,
        config.http.telemetry_path
    );
    if !config.supervise {
        if let Err(e) = signals::install() {
            eprintln!("tinyprom: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
        return ExitCode::from(serve(&listener, &config, 0));
    }
    match supervisor::supervise(|restarts| serve(&listener, &config, restarts)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tinyprom: supervisor: {e}");
            ExitCode::from(1)
        }
    }
}

/// The serving process: runs the server on `listener` until a stop signal (exit 0) or
/// until it breaks (exit 1, for the supervisor to replace it).
fn serve(listener: &TcpListener, config: &Config, restarts: u64) -> u8 {
    let listener = match listener.try_clone() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tinyprom: duplicating the listening socket: {e}");
            return 1;
        }
    };
    let server = match Server::builder(config.http.clone())
        .listener(listener)
        .restarts(restarts)
        .bind()
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("tinyprom: {e}");
            return 1;
        }
    };
    match server.run(signals::stop_flag()) {
        Ok(()) => {
            eprintln!("tinyprom: shut down cleanly");
            0
        }
        Err(e) => {
            eprintln!("tinyprom: {e}");
            1
        }
    }
}
