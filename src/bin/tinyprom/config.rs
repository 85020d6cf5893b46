//! Command-line and environment configuration, in the exporter convention.
//!
//! Flags look like node_exporter's (`--web.listen-address=:8000`); every flag can also
//! be set through an environment variable (`TINYPROM_WEB_LISTEN_ADDRESS`), which is how
//! containers are configured. A flag beats its variable, a variable beats the default.
//! Parsing never panics: every mistake becomes a [`ConfigError`] whose message names the
//! flag and says what would be accepted, and the binary exits with status 2.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tinyprom::http::Options;

/// Everything the binary needs to start: the server's settings from the `--web.*`
/// flags, and whether to supervise it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The server's settings: `--web.listen-address`, `--web.telemetry-path`,
    /// `--web.max-workers`, `--web.shutdown-timeout`, `--web.read-timeout`,
    /// `--web.max-connections`, `--web.openmetrics-created` and `--no-process-metrics`.
    pub http: Options,
    /// Whether a supervising parent process restarts the serving process when it dies
    /// (off with `--no-supervisor`, for debugging).
    pub supervise: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: Options::default(),
            supervise: true,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Serve with this configuration.
    Run(Config),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
    /// GET `/up` on the configured address and exit 0 if it answers 200, else 1 (the
    /// container HEALTHCHECK: a `FROM scratch` image has no curl).
    HealthCheck(Config),
}

/// A configuration mistake, explained in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The `--help` text.
pub const HELP: &str = "\
tinyprom: a tiny Prometheus exporter that monitors itself (RED metrics of its own HTTP server)

Usage: tinyprom [FLAGS]

Endpoints: /up (liveness), /synthetic (random latency and status), /metrics (Prometheus)

Flags (each also read from the environment variable shown):
  --web.listen-address=ADDR    address to listen on, IP:PORT, localhost:PORT or :PORT [default: 0.0.0.0:8000]
                               env TINYPROM_WEB_LISTEN_ADDRESS
  --web.telemetry-path=PATH    path of the metrics endpoint [default: /metrics]
                               env TINYPROM_WEB_TELEMETRY_PATH
  --web.max-workers=N          worker threads answering requests, 1-256 [default: 4]
                               env TINYPROM_WEB_MAX_WORKERS
  --web.shutdown-timeout=DUR   grace period for in-flight requests on SIGTERM/SIGINT,
                               e.g. 500ms, 5s, 1m [default: 5s]
                               env TINYPROM_WEB_SHUTDOWN_TIMEOUT
  --web.read-timeout=DUR       close connections that take longer than this to send a
                               request or sit idle between requests [default: 10s]
                               env TINYPROM_WEB_READ_TIMEOUT
  --web.max-connections=N      client connections kept open at most, 16-65536; past it the
                               one longest without a request in progress is closed
                               [default: 512]
                               env TINYPROM_WEB_MAX_CONNECTIONS
  --web.openmetrics-created    add _created samples (start timestamps of counters, histograms
                               and summaries) to OpenMetrics scrapes; protobuf scrapes always
                               carry them [default: false]
                               env TINYPROM_WEB_OPENMETRICS_CREATED=true
  --no-process-metrics         do not export process_* metrics
                               env TINYPROM_NO_PROCESS_METRICS=true
  --no-supervisor              serve in this process, with no parent process restarting
                               it when it dies (for debugging)
                               env TINYPROM_NO_SUPERVISOR=true
  --health-check               GET /up on --web.listen-address and exit 0 if it answers
                               200, 1 otherwise (for container health checks)
  -h, --help                   print this help and exit
  --version                    print the version and exit

Exit status: 0 after a clean shutdown, 1 on a run-time error (e.g. the address is in use),
2 on a usage error.
";

struct Flag {
    name: &'static str,
    env: &'static str,
    takes_value: bool,
}

const FLAGS: [Flag; 9] = [
    Flag {
        name: "web.listen-address",
        env: "TINYPROM_WEB_LISTEN_ADDRESS",
        takes_value: true,
    },
    Flag {
        name: "web.telemetry-path",
        env: "TINYPROM_WEB_TELEMETRY_PATH",
        takes_value: true,
    },
    Flag {
        name: "web.max-workers",
        env: "TINYPROM_WEB_MAX_WORKERS",
        takes_value: true,
    },
    Flag {
        name: "web.shutdown-timeout",
        env: "TINYPROM_WEB_SHUTDOWN_TIMEOUT",
        takes_value: true,
    },
    Flag {
        name: "web.read-timeout",
        env: "TINYPROM_WEB_READ_TIMEOUT",
        takes_value: true,
    },
    Flag {
        name: "web.max-connections",
        env: "TINYPROM_WEB_MAX_CONNECTIONS",
        takes_value: true,
    },
    Flag {
        name: "web.openmetrics-created",
        env: "TINYPROM_WEB_OPENMETRICS_CREATED",
        takes_value: false,
    },
    Flag {
        name: "no-process-metrics",
        env: "TINYPROM_NO_PROCESS_METRICS",
        takes_value: false,
    },
    Flag {
        name: "no-supervisor",
        env: "TINYPROM_NO_SUPERVISOR",
        takes_value: false,
    },
];

/// Parses the arguments (without the program name) and the environment, as looked up
/// by `env`.
pub fn parse<I, S>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut values: [Option<String>; FLAGS.len()] = Default::default();
    let mut args = args.into_iter().map(Into::into);
    let mut health_check = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--health-check" => {
                health_check = true;
                continue;
            }
            _ => {}
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(ConfigError(format!(
                "unexpected argument {arg:?}: tinyprom takes only --flags (see --help)"
            )));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(i) = FLAGS.iter().position(|f| f.name == name) else {
            return Err(ConfigError(format!(
                "unknown flag --{name} (see --help for the flags)"
            )));
        };
        let value = if FLAGS[i].takes_value {
            match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(ConfigError(format!("flag --{name} needs a value"))),
            }
        } else {
            inline.unwrap_or_else(|| "true".into())
        };
        values[i] = Some(value);
    }
    let mut config = Config::default();
    for (i, flag) in FLAGS.iter().enumerate() {
        let (value, source) = match values[i].take() {
            Some(v) => (v, format!("--{}", flag.name)),
            None => match env(flag.env) {
                Some(v) => (v, flag.env.to_string()),
                None => continue,
            },
        };
        apply(&mut config, flag.name, &value)
            .map_err(|why| ConfigError(format!("invalid {source} {value:?}: {why}")))?;
    }
    if health_check {
        return Ok(Command::HealthCheck(config));
    }
    Ok(Command::Run(config))
}

fn apply(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
    match name {
        "web.listen-address" => config.http.listen_address = parse_address(value)?,
        "web.telemetry-path" => {
            if !value.starts_with('/') || value.contains(['?', '#', ' ']) {
                return Err("expected a path starting with / (e.g. /metrics)".into());
            }
            if value == "/up" || value == "/synthetic" {
                return Err(format!("{value} is already an endpoint of tinyprom"));
            }
            config.http.telemetry_path = value.to_string();
        }
        "web.max-workers" => {
            config.http.max_workers = parse_count(value, 1, 256)?;
        }
        "web.shutdown-timeout" => config.http.shutdown_timeout = parse_duration(value)?,
        "web.read-timeout" => {
            config.http.read_timeout = parse_duration(value)?;
            if config.http.read_timeout.is_zero() {
                return Err("must be more than 0s".into());
            }
        }
        "web.max-connections" => {
            config.http.max_connections = parse_count(value, 16, 65_536)?;
        }
        "web.openmetrics-created" => {
            config.http.openmetrics_created = parse_bool(value)?;
        }
        "no-process-metrics" => {
            config.http.process_metrics = !parse_bool(value)?;
        }
        "no-supervisor" => {
            config.supervise = !parse_bool(value)?;
        }
        _ => unreachable!("FLAGS and apply list the same flags"),
    }
    Ok(())
}

fn parse_address(value: &str) -> Result<SocketAddr, String> {
    // IP literals only, plus `:PORT` and `localhost:PORT`: no name resolution, which
    // would not work in an empty container root anyway and would link glibc's resolver
    // into the static binary.
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else if let Some(port) = value.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        value.to_string()
    };
    full.parse::<SocketAddr>().map_err(|_| {
        "expected IP:PORT (e.g. 0.0.0.0:8000, 127.0.0.1:8000, [::1]:8000), localhost:PORT or :PORT"
            .to_string()
    })
}

/// Parses a whole number from `min` to `max`.
fn parse_count(value: &str, min: usize, max: usize) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
}

/// Parses `500ms`, `5s`, `2m` (and a bare number of seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || "expected a duration such as 500ms, 5s or 1m".to_string();
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    let secs = n * scale;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err("expected a duration between 0s and 24h".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_parsed_and_an_unknown_one_refused() {
        let cmd = parse(["--web.listen-address=127.0.0.1:9000"], |_| None).unwrap();
        let Command::Run(config) = cmd else {
            panic!("expected a run command")
        };
        assert_eq!(config.http.listen_address.port(), 9000);
        assert!(parse(["--bogus"], |_| None).is_err());
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(args.iter().copied(), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(run(&[], &[]).unwrap(), Config::default());
    }

    #[test]
    fn flags_in_both_spellings_and_env() {
        let c = run(
            &[
                "--web.listen-address",
                "127.0.0.1:0",
                "--web.max-workers=8",
                "--no-process-metrics",
            ],
            &[
                ("TINYPROM_WEB_TELEMETRY_PATH", "/prom"),
                ("TINYPROM_WEB_MAX_WORKERS", "2"),
            ],
        )
        .unwrap();
        assert_eq!(c.http.listen_address, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.http.max_workers, 8, "the flag beats the environment");
        assert_eq!(c.http.telemetry_path, "/prom");
        assert!(!c.http.process_metrics);
        let c = run(
            &[":9000"].map(|_| "--web.listen-address=:9000"),
            &[("TINYPROM_NO_PROCESS_METRICS", "false")],
        )
        .unwrap();
        assert_eq!(c.http.listen_address, "0.0.0.0:9000".parse().unwrap());
        assert!(c.http.process_metrics);
        let c = run(
            &[
                "--web.listen-address=[::1]:80",
                "--web.shutdown-timeout=250ms",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.http.listen_address, "[::1]:80".parse().unwrap());
        assert_eq!(c.http.shutdown_timeout, Duration::from_millis(250));
        assert!(!c.http.openmetrics_created, "off by default");
        assert!(
            run(&["--web.openmetrics-created"], &[])
                .unwrap()
                .http
                .openmetrics_created
        );
        assert!(
            run(&[], &[("TINYPROM_WEB_OPENMETRICS_CREATED", "true")])
                .unwrap()
                .http
                .openmetrics_created
        );
        let c = run(&["--web.listen-address=localhost:9100"], &[]).unwrap();
        assert_eq!(c.http.listen_address, "127.0.0.1:9100".parse().unwrap());
        assert!(run(&["--web.listen-address=example.com:80"], &[]).is_err());
    }

    /// Arguments, environment, and a phrase the error must contain.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn errors_name_the_problem() {
        let cases: &[Case] = &[
            (&["--nope"], &[], "unknown flag --nope"),
            (&["stray"], &[], "unexpected argument"),
            (&["--web.listen-address"], &[], "needs a value"),
            (
                &["--web.listen-address=nonsense"],
                &[],
                "--web.listen-address",
            ),
            (&["--web.listen-address=1.2.3.4:99999"], &[], "IP:PORT"),
            (&["--web.max-workers=0"], &[], "1 to 256"),
            (&["--web.max-workers=x"], &[], "1 to 256"),
            (&["--web.telemetry-path=metrics"], &[], "starting with /"),
            (&["--web.telemetry-path=/up"], &[], "already an endpoint"),
            (&["--web.shutdown-timeout=soon"], &[], "duration"),
            (&["--web.max-connections=3"], &[], "16 to 65536"),
            (
                &[],
                &[("TINYPROM_WEB_MAX_WORKERS", "lots")],
                "TINYPROM_WEB_MAX_WORKERS",
            ),
            (
                &[],
                &[("TINYPROM_NO_PROCESS_METRICS", "perhaps")],
                "true or false",
            ),
        ];
        for (args, env, needle) in cases {
            let err = run(args, env).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?} {env:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(["--help"], |_| None).unwrap(), Command::Help);
        assert_eq!(parse(["-h"], |_| None).unwrap(), Command::Help);
        assert_eq!(parse(["--version"], |_| None).unwrap(), Command::Version);
        let Command::HealthCheck(c) =
            parse(["--health-check", "--web.listen-address=:9"], |_| None).unwrap()
        else {
            panic!("health check expected")
        };
        assert_eq!(c.http.listen_address.port(), 9);
    }
}
