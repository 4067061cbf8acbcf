//! The `tcmu-wasm` command: argument parsing and printing; the work is in
//! the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tcmu_wasm::control::api::{HandlersReport, Op, ReloadReport, ReloadTarget, StatusReport};
use tcmu_wasm::control::config::ServeConfig;
use tcmu_wasm::control::{ctl, serve};
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::{HandlerCode, Runtime};

/// A TCMU daemon whose SCSI device handlers are sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(version = &**VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--version`: the daemon's version and the handler contracts it loads.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use tcmu_wasm::sandbox::{OLDEST_WIT_VERSION, WIT_VERSION};
    format!(
        "{} (handler contract tcmu:handler@{WIT_VERSION}; loads components built for {OLDEST_WIT_VERSION} to {WIT_VERSION})",
        env!("CARGO_PKG_VERSION")
    )
});

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance suite for a handler's device type (against the
    /// simulated kernel) and print one line per check.
    #[cfg(feature = "dev-tools")]
    Check(dev::CheckArgs),
    /// Measure a handler through the full ring path.
    #[cfg(feature = "dev-tools")]
    Bench(dev::BenchArgs),
    /// Hot reload under a verifying load: swap two builds of the file
    /// handler back and forth; report failed commands, data errors and pauses.
    #[cfg(feature = "dev-tools")]
    BenchReload(dev::BenchReloadArgs),
    /// Containment under load: a well-behaved device next to a hostile one
    /// on the same CPU; its throughput with each misbehaviour vs alone.
    #[cfg(feature = "dev-tools")]
    BenchNeighbour(dev::BenchNeighbourArgs),
    /// One daemon with many devices added and removed at runtime through
    /// the control socket (simulated kernel): time, memory, socket latency.
    #[cfg(feature = "dev-tools")]
    BenchScale(dev::BenchScaleArgs),
    /// Start a handler crate outside this repository from the SDK's
    /// template: a disk that passes `check`, to change into your device.
    #[cfg(feature = "dev-tools")]
    NewHandler(dev::NewHandlerArgs),
    /// List the handlers found on the search path, with the config keys
    /// each describes.
    Handlers(CodeArgs),
    /// Serve the devices of a config file through the kernel's
    /// target_core_user until SIGINT/SIGTERM (SIGHUP reloads changed handlers).
    Serve(ServeArgs),
    /// Talk to a running daemon through its control socket.
    Ctl(CtlArgs),
    /// Media images, offline.
    #[command(subcommand)]
    Media(MediaFileOp),
    /// Write the man pages or shell completions (for packaging).
    #[command(subcommand)]
    Generate(GenerateOp),
}

#[derive(Debug, Subcommand)]
enum GenerateOp {
    /// Man pages (`tcmu-wasm.1` and one per subcommand, `tcmu-wasm-serve.1`...) into DIR.
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// A completion script for SHELL into DIR (`tcmu-wasm.bash`, `_tcmu-wasm`, `tcmu-wasm.fish`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum MediaFileOp {
    /// Create a blank recordable disc (DVD+R) image: a sparse file that
    /// `ctl media insert DEVICE IMAGE --recordable` puts into an optical
    /// drive, to burn with growisofs, xorriso or cdrskin (docs/optical.md).
    Blank {
        /// The new image (must not exist).
        image: PathBuf,
        /// Recordable capacity, e.g. 700M [default: a single-layer DVD+R,
        /// 2,295,104 sectors = 4.7 GB].
        #[arg(long)]
        size: Option<String>,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The TOML configuration (`[[device]]` tables, optional `[daemon]`,
    /// `[control]`, `[metrics]`).
    #[arg(long)]
    config: PathBuf,
    /// Only validate the configuration: load each handler and open each
    /// device with its config on its backing (read-only), then exit.
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

#[derive(Debug, Args)]
struct CtlArgs {
    /// The daemon's socket [default: $TCMU_WASM_SOCKET, else the --config
    /// file's `[control] socket`, else /run/tcmu-wasm/control.sock]
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Read the socket path from this daemon config.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the daemon's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    op: CtlOp,
}

#[derive(Debug, Subcommand)]
enum LibraryOp {
    /// Every element of every library (or one) and the cartridge in it.
    Status {
        /// Only this library.
        library: Option<String>,
    },
    /// Create a blank cartridge image in the library's directory.
    Create {
        /// The library.
        library: String,
        /// The barcode: 1-32 of A-Z, 0-9, '-', '_'.
        barcode: String,
        /// Capacity, e.g. 256M [default: the library's cartridge_size].
        #[arg(long)]
        size: Option<String>,
        /// Also put it into the first empty mail slot.
        #[arg(long)]
        import: bool,
    },
    /// Put a cartridge into a mail slot (the changer reports 06/28/00).
    Import {
        /// The library.
        library: String,
        /// The cartridge.
        barcode: String,
        /// The mail slot, from 1 [default: the first empty one].
        #[arg(long)]
        mail_slot: Option<u16>,
    },
    /// Take the cartridge out of a mail slot (its image stays).
    Export {
        /// The library.
        library: String,
        /// The mail slot, from 1 [default: the first full one].
        #[arg(long)]
        mail_slot: Option<u16>,
    },
}

#[derive(Debug, Subcommand)]
enum MediaOp {
    /// Put a disc image (or cartridge image) into a drive outside a library.
    /// What was in the drive is ejected first (the initiator hears eject
    /// request, media removal, then new media).
    Insert {
        /// The drive.
        device: String,
        /// The image file.
        image: PathBuf,
        /// Grant the image read-write: a recordable disc (a blank DVD+R made
        /// with `tcmu-wasm media blank`), a writable cartridge.
        #[arg(long)]
        recordable: bool,
        /// Eject the medium in the drive even while the initiator prevents
        /// removal.
        #[arg(long)]
        force: bool,
    },
    /// Take the medium out of a drive outside a library; refused while the
    /// initiator prevents removal (PREVENT ALLOW MEDIUM REMOVAL).
    Eject {
        /// The drive.
        device: String,
        /// Take it even so.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CtlOp {
    /// Devices with handler, code digest, state, counters and latency.
    Status {
        /// Only this device, in detail.
        device: Option<String>,
    },
    /// Create, export and serve a device from a `[[device]]` table.
    Add {
        /// File holding the table (`-` for standard input).
        #[arg(long, conflicts_with = "toml")]
        file: Option<PathBuf>,
        /// The table inline, e.g. 'name="d1" handler="file" size="64M" backing="/srv/d1.img" export="loopback"'
        /// (keys separated by newlines or spaces).
        #[arg(long)]
        toml: Option<String>,
    },
    /// Unexport, remove and stop a device.
    Remove {
        /// The device.
        device: String,
    },
    /// Swap in new handler code while devices stay attached.
    Reload {
        /// Reload this device.
        #[arg(long, group = "target")]
        device: Option<String>,
        /// Reload every device running this handler.
        #[arg(long, group = "target")]
        handler: Option<String>,
        /// Reload every device whose handler file changed (what SIGHUP does).
        #[arg(long, group = "target")]
        changed: bool,
        /// The new component [default: the handler's file, read again].
        #[arg(long, conflicts_with = "rollback")]
        wasm: Option<PathBuf>,
        /// Return to the code each device ran before its last reload.
        #[arg(long)]
        rollback: bool,
        /// Start the new code without the old instance's state.
        #[arg(long)]
        discard_state: bool,
    },
    /// Lift a fence (after repeated faults) and rebuild the handler instance.
    Reset {
        /// The device.
        device: String,
    },
    /// The handlers the daemon can load and the code it runs.
    Handlers,
    /// Tape libraries: status, and the operator's side of the mail slots.
    #[command(subcommand)]
    Library(LibraryOp),
    /// Media of drives outside a library: insert and eject discs.
    #[command(subcommand)]
    Media(MediaOp),
    /// Every device's metrics in Prometheus' text format.
    Metrics,
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
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Ctl(_)) {
        // `tcmu-wasm handlers | head`: stop quietly when the reader goes
        // away, as Unix tools do, instead of panicking in println!. Not for
        // the daemon (a control client that hangs up must not kill it) nor
        // for ctl (a daemon that hangs up is an error to report).
        // SAFETY: no other thread exists yet, and SIG_DFL installs no handler code.
        let _ = unsafe {
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
        };
    }
    match run(cli) {
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(feature = "dev-tools")]
        Command::Check(args) => dev::check(args),
        #[cfg(feature = "dev-tools")]
        Command::NewHandler(args) => dev::new_handler(args),
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => dev::bench(args),
        #[cfg(feature = "dev-tools")]
        Command::BenchReload(args) => dev::bench_reload(args),
        #[cfg(feature = "dev-tools")]
        Command::BenchNeighbour(args) => dev::bench_neighbour(args),
        #[cfg(feature = "dev-tools")]
        Command::BenchScale(args) => dev::bench_scale(args),
        Command::Serve(args) => {
            let cfg = ServeConfig::load(&args.config)?;
            if args.check_config {
                for d in serve::check_config(&cfg)? {
                    println!(
                        "{}: handler {} ({}), {} bytes, export {:?}{}: opens",
                        d.name,
                        d.handler,
                        d.device_type,
                        d.size,
                        d.export,
                        match (d.has_backing, d.backing_exists) {
                            (false, _) => ", no backing store",
                            (true, true) => "",
                            (true, false) => ", backing to be created",
                        }
                    );
                }
                println!("configuration OK");
                return Ok(ExitCode::SUCCESS);
            }
            serve::serve(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Handlers(args) => {
            let runtime = runtime(&args)?;
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
                        // The config keys it describes (WIT 0.2.3 config-help).
                        for key in code.config_keys() {
                            println!("{:<12} {:<8}   {key}", "", "");
                        }
                    }
                    Err(e) => println!("{:<12} unusable: {e:#}  ({})", "?", path.display()),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ctl(args) => run_ctl(args),
        Command::Generate(op) => generate(op),
        Command::Media(MediaFileOp::Blank { image, size }) => {
            let capacity = match size {
                Some(text) => tcmu_wasm::size::parse_size(&text).map_err(anyhow::Error::msg)?,
                None => tcmu_wasm::control::media::DVD_PLUS_R_CAPACITY,
            };
            let bytes = tcmu_wasm::control::media::create_blank_disc(&image, capacity).map_err(anyhow::Error::msg)?;
            println!("{}: blank DVD+R, {} sectors ({bytes} bytes, sparse)", image.display(), capacity / 2048);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Man pages and completions come from the same clap definition as the
/// parser, so they cannot drift from it.
fn generate(op: GenerateOp) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    match op {
        GenerateOp::Man { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir).with_context(|| format!("writing man pages into {}", dir.display()))?;
        }
        GenerateOp::Completions { shell, dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = clap_complete::generate_to(shell, &mut cmd, "tcmu-wasm", &dir)
                .with_context(|| format!("writing {shell} completions into {}", dir.display()))?;
            println!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_ctl(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let socket = ctl::socket_path(args.socket.as_deref(), args.config.as_deref())?;
    let op = match &args.op {
        CtlOp::Status { device } => Op::Status { device: device.clone() },
        CtlOp::Add { file, toml } => {
            let text = match (file, toml) {
                (Some(path), _) if path.as_os_str() == "-" => {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text
                }
                (Some(path), _) => std::fs::read_to_string(path)?,
                (None, Some(inline)) => inline.split_whitespace().collect::<Vec<_>>().join("\n"),
                (None, None) => anyhow::bail!("give the device as --file FILE or --toml '...'"),
            };
            Op::Add { device: ctl::device_table(&text)? }
        }
        CtlOp::Remove { device } => Op::Remove { device: device.clone() },
        CtlOp::Reset { device } => Op::Reset { device: device.clone() },
        CtlOp::Handlers => Op::Handlers,
        CtlOp::Metrics => Op::Metrics,
        CtlOp::Library(LibraryOp::Status { library }) => Op::LibraryStatus { library: library.clone() },
        CtlOp::Library(LibraryOp::Create { library, barcode, size, import }) => Op::LibraryCreate {
            library: library.clone(),
            barcode: barcode.clone(),
            size: size.as_deref().map(tcmu_wasm::size::parse_size).transpose().map_err(anyhow::Error::msg)?,
            import: *import,
        },
        CtlOp::Library(LibraryOp::Import { library, barcode, mail_slot }) => {
            Op::LibraryImport { library: library.clone(), barcode: barcode.clone(), mail_slot: *mail_slot }
        }
        CtlOp::Library(LibraryOp::Export { library, mail_slot }) => {
            Op::LibraryExport { library: library.clone(), mail_slot: *mail_slot }
        }
        CtlOp::Media(MediaOp::Insert { device, image, recordable, force }) => Op::MediaInsert {
            device: device.clone(),
            // The daemon resolves paths itself: make it absolute here.
            image: std::path::absolute(image)?,
            recordable: *recordable,
            force: *force,
        },
        CtlOp::Media(MediaOp::Eject { device, force }) => Op::MediaEject { device: device.clone(), force: *force },
        CtlOp::Reload { device, handler, changed, wasm, rollback, discard_state } => {
            let target = match (device, handler, changed) {
                (Some(d), _, _) => ReloadTarget::Device(d.clone()),
                (_, Some(h), _) => ReloadTarget::Handler(h.clone()),
                (_, _, true) => ReloadTarget::Changed(true),
                _ => anyhow::bail!("say what to reload: --device NAME, --handler NAME or --changed"),
            };
            // The daemon resolves paths itself: make them absolute here.
            let wasm = wasm.as_ref().map(std::path::absolute).transpose()?;
            Op::Reload { target, wasm, rollback: *rollback, discard_state: *discard_state }
        }
    };
    let result = ctl::call(&socket, op)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    let ok = match &args.op {
        CtlOp::Status { device } => {
            let report: StatusReport = serde_json::from_value(result)?;
            if !args.json {
                match (device, report.devices.first()) {
                    (Some(_), Some(d)) => print!("{}", ctl::format_device(d)),
                    _ => print!("{}", ctl::format_status(&report)),
                }
            }
            true
        }
        CtlOp::Add { .. } => {
            let report: StatusReport = serde_json::from_value(result)?;
            if !args.json {
                print!("{}", ctl::format_status(&report));
            }
            true
        }
        CtlOp::Handlers => {
            if !args.json {
                print!("{}", ctl::format_handlers(&serde_json::from_value::<HandlersReport>(result)?));
            }
            true
        }
        CtlOp::Metrics => {
            if !args.json {
                print!("{}", result.as_str().unwrap_or_default());
            }
            true
        }
        CtlOp::Reload { .. } => {
            let (text, ok) = ctl::format_reload(&serde_json::from_value::<ReloadReport>(result)?);
            if !args.json {
                print!("{text}");
            }
            ok
        }
        CtlOp::Library(LibraryOp::Status { .. }) => {
            if !args.json {
                let libraries: Vec<tcmu_wasm::control::libraries::LibraryStatus> = serde_json::from_value(result)?;
                print!("{}", ctl::format_libraries(&libraries));
            }
            true
        }
        CtlOp::Library(_) => {
            if !args.json {
                let change: tcmu_wasm::control::libraries::LibraryChange = serde_json::from_value(result)?;
                println!("{}: {}", change.library, change.message);
            }
            true
        }
        CtlOp::Media(_) => {
            if !args.json {
                let change: tcmu_wasm::control::media::MediaChange = serde_json::from_value(result)?;
                println!("{}", change.message);
            }
            true
        }
        CtlOp::Remove { device } | CtlOp::Reset { device } => {
            if !args.json {
                println!("{device}: done");
            }
            true
        }
    };
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `check`, `bench` and `new-handler`, for handler authors.
#[cfg(feature = "dev-tools")]
mod dev {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Context;
    use clap::Args;
    use tcmu_wasm::bench::{self, BenchOptions, Pattern};
    use tcmu_wasm::check::{self, CheckOptions};
    use tcmu_wasm::handlers;
    use tcmu_wasm::sandbox::{HandlerCode, Limits};
    use tcmu_wasm::size::parse_size;

    use super::CodeArgs;

    #[derive(Debug, Args)]
    pub struct HandlerArgs {
        /// A built handler's name (e.g. `file`) or a path to a `.wasm` component.
        #[arg(long)]
        handler: String,
        /// The handler's own configuration string.
        #[arg(long, default_value = "")]
        config: String,
        #[command(flatten)]
        code: CodeArgs,
    }

    #[derive(Debug, Args)]
    pub struct NewHandlerArgs {
        /// The handler's name (what devices will use: `handler = "NAME"`).
        name: String,
        /// Where to create the crate [default: ./NAME]; must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The tcmu-guest-sdk crate to depend on [default: $TCMU_WASM_SDK, the
        /// installed SDK (<prefix>/share/tcmu-wasm/sdk/guest-sdk), or this build tree's].
        #[arg(long)]
        sdk: Option<PathBuf>,
    }

    pub fn new_handler(args: NewHandlerArgs) -> anyhow::Result<ExitCode> {
        use tcmu_wasm::new_handler;
        new_handler::validate_name(&args.name)?;
        let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
        let sdk = new_handler::find_sdk(args.sdk.as_deref())?;
        new_handler::create(&dir, &args.name, &sdk)?;
        println!("created handler crate {} (SDK {}: {})", dir.display(), tcmu_guest_sdk::SDK_VERSION, sdk.display());
        println!("next: cd {} && cargo test && cargo build --release --target wasm32-wasip2", dir.display());
        println!(
            "then: tcmu-wasm check --handler {}/target/wasm32-wasip2/release/tcmu_handler_{}.wasm",
            dir.display(),
            args.name.replace('-', "_")
        );
        Ok(ExitCode::SUCCESS)
    }

    #[derive(Debug, Args)]
    pub struct CheckArgs {
        #[command(flatten)]
        handler: HandlerArgs,
        /// Size of the temporary backing store: a disk's medium, a tape
        /// drive's cartridge (early warning `size`/16 before its end unless
        /// the config sets `early_warning=`), an optical drive's discs (the
        /// pressed one and each blank DVD+R, in whole 2048-byte sectors); a
        /// changer's library ignores it.
        #[arg(long, default_value = "16M", value_parser = parse_size)]
        size: u64,
    }

    #[derive(Debug, Args)]
    pub struct BenchArgs {
        #[command(flatten)]
        handler: HandlerArgs,
        /// Device size [default with --backing: the file's or block device's size].
        #[arg(long, value_parser = parse_size, required_unless_present = "backing")]
        size: Option<u64>,
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
        /// baseline for the sandbox's cost). The `file` and `null` handlers have one.
        #[arg(long, conflicts_with = "compare")]
        native: bool,
        /// Run the wasm handler and the native baseline back to back, `--rounds`
        /// times each (alternating), and report the wasm/native ratio.
        #[arg(long)]
        compare: bool,
        /// Alternating rounds per side with `--compare` or `--vs-fio`; the best round counts.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Print one JSON object instead of a line.
        #[arg(long)]
        json: bool,
        /// Directory for the temporary backing file [default: the system temp dir]
        #[arg(long)]
        dir: Option<PathBuf>,
        /// How the store's transfers run: auto (io_uring where available),
        /// uring, or blocking (one command at a time, the pre-0.3 data path).
        #[arg(long, value_enum, default_value = "auto")]
        io: tcmu_wasm::aio::IoMode,
        /// Spin up to this many microseconds for work before the device
        /// thread sleeps, as `busy_poll_us` does (0: never).
        #[arg(long, default_value_t = 0)]
        busy_poll_us: u64,
        /// Serve this existing file or block device instead of a temporary
        /// file. Write patterns OVERWRITE it; read patterns open it read-only.
        #[arg(long)]
        backing: Option<PathBuf>,
        /// Open the backing with O_DIRECT, as `direct = true` does (fio too,
        /// with --vs-fio): uncached figures on real storage.
        #[arg(long)]
        direct: bool,
        /// Also run fio (io_uring engine) with the same pattern, block size,
        /// queue depth and backing, `--rounds` times each (alternating), and
        /// report the tcmu-wasm/fio ratio.
        #[arg(long, conflicts_with_all = ["native", "compare"])]
        vs_fio: bool,
    }

    #[derive(Debug, Args)]
    pub struct BenchReloadArgs {
        /// The build serving first.
        #[arg(long, default_value = "file")]
        a: String,
        /// The build swapped in [default: this build's second build of the
        /// file handler, file-build-b].
        #[arg(long)]
        b: Option<String>,
        /// Reloads (alternating).
        #[arg(long, default_value_t = 100)]
        reloads: u32,
        /// Commands kept in flight.
        #[arg(long, default_value_t = 8)]
        iodepth: u32,
        /// Device size.
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        size: u64,
        /// Milliseconds between reloads.
        #[arg(long, default_value_t = 20)]
        interval_ms: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        code: CodeArgs,
    }

    pub fn bench_reload(args: BenchReloadArgs) -> anyhow::Result<ExitCode> {
        let runtime = super::runtime(&args.code)?;
        let a = HandlerCode::load(&runtime, &handlers::resolve(&args.a)?)?;
        let b_path = match &args.b {
            Some(b) => handlers::resolve(b)?,
            None => handlers::fixture("file-build-b"),
        };
        let b = HandlerCode::load(&runtime, &b_path)?;
        anyhow::ensure!(a.digest() != b.digest(), "--a and --b are the same build");
        let opts = tcmu_wasm::bench::reload::ReloadBenchOptions {
            reloads: args.reloads,
            iodepth: args.iodepth,
            size: args.size,
            interval: Duration::from_millis(args.interval_ms),
            dir: std::env::temp_dir(),
        };
        let report = tcmu_wasm::bench::reload::run(a, b, &opts)?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{report}");
        }
        let clean = report.failed_commands == 0 && report.data_errors == 0 && report.reload_failures == 0;
        Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    #[derive(Debug, Args)]
    pub struct BenchNeighbourArgs {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Only these misbehaviours (hostile fixture configs; default: all).
        #[arg(long, value_delimiter = ',')]
        cases: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        code: CodeArgs,
    }

    pub fn bench_neighbour(args: BenchNeighbourArgs) -> anyhow::Result<ExitCode> {
        use tcmu_wasm::bench::neighbour;
        let runtime = super::runtime(&args.code)?;
        let file = HandlerCode::load(&runtime, &handlers::resolve("file")?)?;
        let hostile = HandlerCode::load(&runtime, &handlers::fixture("hostile"))?;
        let cases: Vec<String> = if args.cases.is_empty() {
            neighbour::CASES.iter().map(|c| c.to_string()).collect()
        } else {
            args.cases.clone()
        };
        let report = neighbour::run(file, hostile, &cases, args.seconds, &std::env::temp_dir())?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{report}");
        }
        Ok(if report.cases.iter().all(|c| c.ratio >= 0.9) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    #[derive(Debug, Args)]
    pub struct BenchScaleArgs {
        /// Devices to add.
        #[arg(long, default_value_t = 128)]
        devices: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    }

    pub fn bench_scale(args: BenchScaleArgs) -> anyhow::Result<ExitCode> {
        let report = tcmu_wasm::bench::scale::run(args.devices, &std::env::temp_dir())?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{report}");
        }
        Ok(if report.commands_ok == report.devices { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    fn load(args: &HandlerArgs) -> anyhow::Result<Arc<HandlerCode>> {
        let path = handlers::resolve(&args.handler)?;
        HandlerCode::load(&super::runtime(&args.code)?, &path)
    }

    pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
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

    pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
        let block_size = u32::try_from(args.bs).context("--bs too large")?;
        anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
        let size = match (args.size, &args.backing) {
            (Some(size), _) => size,
            (None, Some(path)) => match tcmu_wasm::backing::block_device_size_of(path)? {
                Some(bytes) => bytes,
                None => std::fs::metadata(path).with_context(|| format!("--backing {}", path.display()))?.len(),
            },
            (None, None) => unreachable!("clap requires --size without --backing"),
        };
        if let Some(path) = &args.backing {
            anyhow::ensure!(
                path.exists(),
                "--backing {} does not exist (give an existing file or block device)",
                path.display()
            );
        }
        let opts = BenchOptions {
            size,
            pattern: args.rw,
            block_size,
            duration: Duration::from_secs_f64(args.seconds),
            iodepth: args.iodepth,
            config: args.handler.config.clone(),
            dir: args.dir.clone().unwrap_or_else(std::env::temp_dir),
            io: tcmu_wasm::aio::IoSettings {
                mode: args.io,
                busy_poll: Duration::from_micros(args.busy_poll_us),
                ..Default::default()
            },
            backing: args.backing.clone(),
            direct: args.direct,
            native: if args.handler.handler == "null" {
                bench::NativeHandler::Null
            } else {
                bench::NativeHandler::File
            },
        };
        if args.vs_fio {
            let c = bench::compare_fio(load(&args.handler)?, &opts, args.rounds)?;
            if args.json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!("{}\n{}\nratio tcmu-wasm/fio: {:.3}\n({})", c.wasm, c.fio, c.ratio, c.fio_command);
            }
            return Ok(ExitCode::SUCCESS);
        }
        if args.native || args.compare {
            // The native baseline is the file handler linked into the host;
            // make sure the user is comparing against the same logic.
            anyhow::ensure!(
                matches!(args.handler.handler.as_str(), "file" | "null"),
                "--native and --compare are only available for the built-in `file` and `null` handlers"
            );
        }
        if args.compare {
            let c = bench::compare(load(&args.handler)?, &opts, args.rounds)?;
            if args.json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!("{}\n{}\nratio wasm/native: {:.3}", c.wasm, c.native, c.ratio);
                if let Some(share) = c.sandbox_cpu_us_per_cmd {
                    println!("sandbox share of the device thread's CPU: {share:.2} us/command");
                }
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
}
