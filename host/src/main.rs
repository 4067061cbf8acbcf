//! The `tcmu-wasm` command.

use std::path::PathBuf;
use std::process::ExitCode;
#[cfg(feature = "dev-tools")]
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
#[cfg(feature = "dev-tools")]
use tcmu_wasm::bench::{self, BenchOptions, Pattern};
#[cfg(feature = "dev-tools")]
use tcmu_wasm::check::{self, CheckOptions};
use tcmu_wasm::control::config::ServeConfig;
use tcmu_wasm::control::serve::serve;
use tcmu_wasm::handlers;
#[cfg(feature = "dev-tools")]
use tcmu_wasm::sandbox::Limits;
use tcmu_wasm::sandbox::{HandlerCode, Runtime};
#[cfg(feature = "dev-tools")]
use tcmu_wasm::size::parse_size;

/// A TCMU daemon whose SCSI device handlers are sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance suite for a handler's device type (against the
    /// simulated kernel) and print one line per check.
    #[cfg(feature = "dev-tools")]
    Check(CheckArgs),
    /// Measure a handler through the full ring path.
    #[cfg(feature = "dev-tools")]
    Bench(BenchArgs),
    /// List the handlers found on the search path.
    Handlers(CodeArgs),
    /// Serve the devices of a config file through the kernel's
    /// target_core_user until SIGINT/SIGTERM.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The TOML configuration (one [[device]] table per device).
    #[arg(long)]
    config: PathBuf,
    /// Only validate the configuration and load the handlers, then exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, Args)]
struct CodeArgs {
    /// Directory for compiled-code caching [default: $TCMU_WASM_CACHE_DIR or ~/.cache/tcmu-wasm]
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compile handlers every time instead of using the cache.
    #[arg(long)]
    no_cache: bool,
}

#[cfg(feature = "dev-tools")]
#[derive(Debug, Args)]
struct HandlerArgs {
    /// A built handler's name (e.g. `file`) or a path to a `.wasm` component.
    #[arg(long)]
    handler: String,
    /// The handler's own configuration string.
    #[arg(long, default_value = "")]
    config: String,
    #[command(flatten)]
    code: CodeArgs,
}

#[cfg(feature = "dev-tools")]
#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    handler: HandlerArgs,
    /// Size of the temporary backing store.
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    size: u64,
}

#[cfg(feature = "dev-tools")]
#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    handler: HandlerArgs,
    /// Device size.
    #[arg(long, value_parser = parse_size)]
    size: u64,
    /// Access pattern.
    #[arg(long, value_enum)]
    rw: Pattern,
    /// Bytes per command.
    #[arg(long, value_parser = parse_size)]
    bs: u64,
    /// Seconds to measure.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Commands kept in flight.
    #[arg(long, default_value_t = 8)]
    iodepth: u32,
    /// Serve the same handler logic compiled natively into the host (the
    /// baseline for the sandbox's cost). Only the `file` handler has one.
    #[arg(long, conflicts_with = "compare")]
    native: bool,
    /// Run the wasm handler and the native baseline back to back, `--rounds`
    /// times each (alternating), and report the wasm/native ratio.
    #[arg(long)]
    compare: bool,
    /// Alternating rounds per side with `--compare`; the best round counts.
    #[arg(long, default_value_t = 3, requires = "compare")]
    rounds: u32,
    /// Print one JSON object instead of a line.
    #[arg(long)]
    json: bool,
    /// Directory for the temporary backing file [default: the system temp dir]
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,tcmu_wasm=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs of a service go to files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcmu-wasm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(args: &CodeArgs) -> anyhow::Result<std::sync::Arc<Runtime>> {
    let cache = (!args.no_cache).then(|| args.cache_dir.clone().unwrap_or_else(handlers::default_cache_dir));
    Runtime::new(cache)
}

#[cfg(feature = "dev-tools")]
fn load(args: &HandlerArgs) -> anyhow::Result<std::sync::Arc<HandlerCode>> {
    let path = handlers::resolve(&args.handler)?;
    HandlerCode::load(&runtime(&args.code)?, &path)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(feature = "dev-tools")]
        Command::Check(args) => {
            let code = load(&args.handler)?;
            println!(
                "checking handler {} ({:?}) from {}",
                code.info().name,
                code.info().device_type,
                code.path().display()
            );
            let opts = CheckOptions { config: args.handler.config.clone(), size: args.size, limits: Limits::default() };
            let outcomes = check::run(code, &opts)?;
            for o in &outcomes {
                println!("{o}");
            }
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).count();
            println!("{} passed, {failed} failed, {skipped} skipped", outcomes.len() - failed - skipped);
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => {
            let block_size = u32::try_from(args.bs).context("--bs too large")?;
            anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
            let opts = BenchOptions {
                size: args.size,
                pattern: args.rw,
                block_size,
                duration: Duration::from_secs_f64(args.seconds),
                iodepth: args.iodepth,
                config: args.handler.config.clone(),
                dir: args.dir.clone().unwrap_or_else(std::env::temp_dir),
            };
            if args.native || args.compare {
                // The native baseline is the file handler linked into the host;
                // make sure the user is comparing against the same logic.
                anyhow::ensure!(
                    args.handler.handler == "file",
                    "--native and --compare are only available for the built-in `file` handler"
                );
            }
            if args.compare {
                let code = load(&args.handler)?;
                let (mut wasm, mut native) = (Vec::new(), Vec::new());
                for _ in 0..args.rounds.max(1) {
                    wasm.push(bench::run(Some(code.clone()), &opts)?);
                    native.push(bench::run(None, &opts)?);
                }
                let best = |runs: Vec<bench::BenchResult>| {
                    runs.into_iter().max_by(|a, b| a.iops.total_cmp(&b.iops)).expect("at least one round")
                };
                let (wasm, native) = (best(wasm), best(native));
                let ratio = wasm.iops / native.iops;
                if args.json {
                    println!("{}", serde_json::json!({ "wasm": wasm, "native": native, "ratio": ratio }));
                } else {
                    println!("{wasm}\n{native}\nratio wasm/native: {ratio:.3}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let code = if args.native { None } else { Some(load(&args.handler)?) };
            let result = bench::run(code, &opts)?;
            if args.json {
                println!("{}", serde_json::to_string(&result)?);
            } else {
                println!("{result}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let cfg = ServeConfig::load(&args.config)?;
            if args.check_config {
                let runtime =
                    Runtime::new(Some(cfg.daemon.cache_dir.clone().unwrap_or_else(handlers::default_cache_dir)))?;
                for d in &cfg.devices {
                    let code = HandlerCode::load(&runtime, &handlers::resolve(&d.handler)?)
                        .with_context(|| format!("device {:?}", d.name))?;
                    println!(
                        "{}: handler {} ({:?}), {} bytes, export {:?}",
                        d.name,
                        code.info().name,
                        code.info().device_type,
                        d.size.0,
                        d.export
                    );
                }
                println!("configuration OK");
                return Ok(ExitCode::SUCCESS);
            }
            serve(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Handlers(args) => {
            let runtime = runtime(&args)?;
            {
                for path in handlers::available() {
                    match HandlerCode::load(&runtime, &path) {
                        Ok(code) => {
                            let i = code.info();
                            println!(
                                "{:<12} {:<8} {}  ({})",
                                i.name,
                                format!("{:?}", i.device_type).to_lowercase(),
                                i.description,
                                path.display()
                            );
                        }
                        Err(e) => println!("{:<12} unusable: {e:#}  ({})", "?", path.display()),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
