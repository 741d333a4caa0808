//! The LLM provider stand-in as a process:
//! `provider-standin --port N` (0, the default, picks a free port).
//!
//! Binds 127.0.0.1 only. When ready it prints exactly one line to stdout,
//! `provider-standin listening on http://127.0.0.1:PORT`, and exits with
//! status 0 on SIGINT or SIGTERM.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

const USAGE: &str = "usage: provider-standin [--port N]   (N = 0 picks a free port)";

fn parse_port(mut args: impl Iterator<Item = String>) -> Result<u16, String> {
    let mut port = 0;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--port" => args.next().ok_or("--port needs a value")?,
            other => match other.strip_prefix("--port=") {
                Some(value) => value.to_owned(),
                None => return Err(format!("unknown argument `{other}`")),
            },
        };
        port = value
            .parse()
            .map_err(|_| format!("`{value}` is not a port number"))?;
    }
    Ok(port)
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let port = match parse_port(args.into_iter()) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("provider-standin: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let standin = match harness::standin::serve(addr).await {
        Ok(standin) => standin,
        Err(err) => {
            eprintln!("provider-standin: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "provider-standin listening on {}", standin.url())
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(err) = announced {
        eprintln!("provider-standin: cannot write to stdout: {err}");
        return ExitCode::FAILURE;
    }
    let result = shutdown_signal().await;
    standin.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("provider-standin: cannot wait for signals: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    fn port(args: &[&str]) -> Result<u16, String> {
        parse_port(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn reads_the_port_flag() {
        assert_eq!(port(&[]), Ok(0));
        assert_eq!(port(&["--port", "8787"]), Ok(8787));
        assert_eq!(port(&["--port=0"]), Ok(0));
        assert!(port(&["--port"]).is_err());
        assert!(port(&["--port", "x"]).is_err());
        assert!(port(&["--bind", "1"]).is_err());
    }
}
