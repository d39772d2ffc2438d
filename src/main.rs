//! The `aiida-rest` command: serve an AiiDA storage over REST API v4.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use aiida_rest::http::cors::Origins;
use aiida_rest::http::databases::{self, Database, Databases, Switch};
use aiida_rest::http::observe::{LogFormat, Observer};
use aiida_rest::http::serve::{self as server, ServeOptions};
use aiida_rest::http::{App, AppState, FRONT_DOORS, Settings, landing};
use aiida_rest::storage::catalog::{self, Catalog};
use aiida_rest::storage::db::DbLimits;
use aiida_rest::storage::{self, Source};

#[derive(Parser)]
#[command(name = "aiida-rest", version, about = "A fast, read-only REST server for AiiDA provenance databases")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an AiiDA archive, a core.sqlite_dos profile folder, a PostgreSQL database, or a
    /// configured profile.
    Serve(ServeArgs),
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// A `.aiida` archive file, a `core.sqlite_dos` profile folder (database.sqlite +
    /// container/), or the URL of a core.psql_dos database,
    /// `postgresql://user[:password]@host[:port]/database` (with --repository; the password
    /// may also come from $PGPASSWORD). Without it (and without --profile, --database or
    /// --config) the default profile of the AiiDA configuration is served, as `verdi` picks it
    /// ($AIIDA_PATH or ~/.aiida); the demo archive built into the program where there is no
    /// configuration or no profile.
    #[arg(env = "AIIDA_REST_STORAGE")]
    storage: Option<PathBuf>,
    /// The disk-objectstore container of the PostgreSQL database given as STORAGE (the
    /// container folder, or the folder holding `container/`).
    #[arg(long, env = "AIIDA_REST_REPOSITORY")]
    repository: Option<PathBuf>,
    /// Serve this profile of the AiiDA configuration ($AIIDA_PATH or ~/.aiida).
    #[arg(short = 'p', long, conflicts_with = "storage", env = "AIIDA_REST_PROFILE")]
    profile: Option<String>,
    /// Serve several databases: NAME=STORAGE, repeatable; each is served under
    /// /NAME/api/v4 and /NAME/api/v2. STORAGE: an archive, a profile folder, a folder of
    /// .aiida files (one database per file, named by the file stem), `profile:PROFILE`, or
    /// `postgresql://...,repository=PATH`.
    #[arg(long = "database", value_name = "NAME=STORAGE", env = "AIIDA_REST_DATABASES", value_delimiter = ';')]
    databases: Vec<String>,
    /// A TOML file naming the databases to serve (`[[database]]` entries) and server options
    /// (the long option names as keys); SIGHUP reloads it. See the README.
    #[arg(long, env = "AIIDA_REST_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(short = 'H', long, visible_alias = "hostname", default_value = "127.0.0.1", env = "AIIDA_REST_HOST")]
    host: String,
    /// Port to listen on.
    #[arg(short = 'P', long, default_value_t = 5000, env = "AIIDA_REST_PORT")]
    port: u16,
    /// Most database connections used at once (per database).
    #[arg(long, default_value_t = 8, env = "AIIDA_REST_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Longest time one database query may run, in seconds.
    #[arg(long, default_value_t = 30, env = "AIIDA_REST_STATEMENT_TIMEOUT")]
    statement_timeout: u64,
    /// The most rows one answer may hold (a negative `limit` and QueryBuilder queries are
    /// capped by it).
    #[arg(long, default_value_t = 10_000, env = "AIIDA_REST_MAX_ROWS")]
    max_rows: i64,
    /// Serve POST /querybuilder (the default, as `verdi restapi --posting`).
    #[arg(long, overrides_with = "no_posting")]
    posting: bool,
    /// Do not serve POST /querybuilder (as `verdi restapi --no-posting`).
    #[arg(long, overrides_with = "posting", env = "AIIDA_REST_NO_POSTING")]
    no_posting: bool,
    /// The origins that may read the API from a browser (CORS): `*` (any, as aiida-core), or
    /// a list (repeat the option or separate with commas).
    #[arg(long, default_value = "*", env = "AIIDA_REST_CORS_ORIGIN", value_delimiter = ',')]
    cors_origin: Vec<String>,
    /// With several databases: close a database after this many seconds without a request
    /// (it opens again on the next one); 0 keeps databases open.
    #[arg(long, default_value_t = 600, env = "AIIDA_REST_IDLE_TIMEOUT")]
    idle_timeout: u64,
    /// With several databases: most PostgreSQL sessions of all databases together.
    #[arg(long, default_value_t = 64, env = "AIIDA_REST_PG_MAX_SESSIONS")]
    pg_max_sessions: usize,
    /// Seconds a client has to send a complete request head (also the longest idle time
    /// between requests on a kept-alive connection, and the longest pause inside a request body).
    #[arg(long, default_value_t = 10, env = "AIIDA_REST_HEADER_TIMEOUT")]
    header_timeout: u64,
    /// Most client connections open at once; at the limit, the connection idle the longest is
    /// closed to make room. Default: the open-files limit less an eighth and 64, at most 10000.
    #[arg(long, env = "AIIDA_REST_MAX_OPEN_CONNECTIONS")]
    max_open_connections: Option<usize>,
    /// Seconds that requests under way may take to finish after SIGTERM or Ctrl-C; then the
    /// remaining connections are dropped.
    #[arg(long, default_value_t = 10, env = "AIIDA_REST_SHUTDOWN_GRACE")]
    shutdown_grace: u64,
    /// The public base URL of the server (e.g. `https://example.org/aiida` behind a proxy):
    /// the start of every absolute URL in the answers (`url`, `url_root`, `Link`), instead of
    /// the request's Host.
    #[arg(long, env = "AIIDA_REST_PUBLIC_URL", value_parser = server::public_origin)]
    public_url: Option<server::Origin>,
    /// Seconds within which a request must be answered (to the head of the answer); a request
    /// still running then gets a 503 and its database query is stopped. 0: no limit.
    #[arg(long, default_value_t = 0, env = "AIIDA_REST_REQUEST_TIMEOUT")]
    request_timeout: u64,
    /// Serve everything below this path (e.g. `/aiida`: `/aiida/api/v4/...`, `/aiida/NAME/api/v4/...`,
    /// `/aiida/health`), for a reverse proxy that passes the path on unchanged. The answers'
    /// URLs start with it (after --public-url's origin, when given).
    #[arg(long, env = "AIIDA_REST_BASE_URL", value_parser = base_url)]
    base_url: Option<String>,
    /// Do not count requests nor serve /metrics (Prometheus); on by default.
    #[arg(long, env = "AIIDA_REST_NO_METRICS", value_parser = BoolishValueParser::new())]
    no_metrics: bool,
    /// Write one line per request to standard output (with its request id, which the answer
    /// carries in X-Request-Id: the client's, or one made).
    #[arg(long, env = "AIIDA_REST_ACCESS_LOG", value_parser = BoolishValueParser::new())]
    access_log: bool,
    /// The format of the access log: `text` or `json` (one object per line).
    #[arg(long, default_value = "text", env = "AIIDA_REST_LOG_FORMAT")]
    log_format: LogFormat,
    /// A folder of the server's own where the node counts of each storage (statistics, type
    /// trees) are saved, so that the next start answers them at once; `none`: not saved.
    /// Default: $XDG_CACHE_HOME/aiida-rest, else ~/.cache/aiida-rest.
    #[arg(long, value_name = "DIR", env = "AIIDA_REST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not save node counts in a cache folder (as `--cache-dir none`).
    #[arg(long, conflicts_with = "cache_dir", env = "AIIDA_REST_NO_CACHE_DIR", value_parser = BoolishValueParser::new())]
    no_cache_dir: bool,
}

impl ServeArgs {
    /// Takes the options of a configuration file's top level where the command line and the
    /// environment gave none.
    fn apply(&mut self, given: &ArgMatches, catalog: &Catalog) -> Result<(), String> {
        fn set<T: std::str::FromStr>(
            given: &ArgMatches,
            catalog: &Catalog,
            id: &str,
            keys: &[&str],
            slot: &mut T,
        ) -> Result<(), String>
        where
            T::Err: std::fmt::Display,
        {
            if !matches!(given.value_source(id), None | Some(ValueSource::DefaultValue)) {
                return Ok(());
            }
            for key in keys {
                if let Some(text) = catalog.option(key) {
                    *slot = text.parse().map_err(|e| format!("{key} = {text:?}: {e}"))?;
                }
            }
            Ok(())
        }
        let known = [
            "host",
            "hostname",
            "port",
            "max_connections",
            "statement_timeout",
            "max_rows",
            "posting",
            "cors_origin",
            "idle_timeout",
            "pg_max_sessions",
            "header_timeout",
            "max_open_connections",
            "shutdown_grace",
            "public_url",
            "metrics",
            "base_url",
            "request_timeout",
            "access_log",
            "log_format",
            "cache_dir",
        ];
        if let Some(key) = catalog.options.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!("unknown option '{key}' (known: {})", known.join(", ")));
        }
        set(given, catalog, "host", &["host", "hostname"], &mut self.host)?;
        set(given, catalog, "port", &["port"], &mut self.port)?;
        set(given, catalog, "max_connections", &["max_connections"], &mut self.max_connections)?;
        set(given, catalog, "statement_timeout", &["statement_timeout"], &mut self.statement_timeout)?;
        set(given, catalog, "max_rows", &["max_rows"], &mut self.max_rows)?;
        set(given, catalog, "idle_timeout", &["idle_timeout"], &mut self.idle_timeout)?;
        set(given, catalog, "pg_max_sessions", &["pg_max_sessions"], &mut self.pg_max_sessions)?;
        set(given, catalog, "header_timeout", &["header_timeout"], &mut self.header_timeout)?;
        set(given, catalog, "shutdown_grace", &["shutdown_grace"], &mut self.shutdown_grace)?;
        let mut posting = !self.no_posting;
        set(given, catalog, "no_posting", &["posting"], &mut posting)?;
        if !self.posting {
            self.no_posting = !posting;
        }
        let mut metrics = !self.no_metrics;
        set(given, catalog, "no_metrics", &["metrics"], &mut metrics)?;
        self.no_metrics = !metrics;
        set(given, catalog, "access_log", &["access_log"], &mut self.access_log)?;
        set(given, catalog, "request_timeout", &["request_timeout"], &mut self.request_timeout)?;
        set(given, catalog, "log_format", &["log_format"], &mut self.log_format)?;
        if matches!(given.value_source("cors_origin"), None | Some(ValueSource::DefaultValue))
            && let Some(list) = catalog.option("cors_origin")
        {
            self.cors_origin = list.split(',').map(str::to_string).collect();
        }
        if self.max_open_connections.is_none()
            && let Some(text) = catalog.option("max_open_connections")
        {
            self.max_open_connections = Some(text.parse().map_err(|e| format!("max_open_connections: {e}"))?);
        }
        if self.base_url.is_none()
            && let Some(text) = catalog.option("base_url")
        {
            self.base_url = Some(base_url(text)?);
        }
        if self.cache_dir.is_none()
            && !self.no_cache_dir
            && let Some(text) = catalog.option("cache_dir")
        {
            // A relative folder is read from the configuration file's folder, as its storages.
            let base = self.config.as_deref().and_then(Path::parent).unwrap_or(Path::new(""));
            self.cache_dir = Some(if text == "none" { PathBuf::from(text) } else { base.join(text) });
        }
        if self.public_url.is_none()
            && let Some(text) = catalog.option("public_url")
        {
            self.public_url = Some(server::public_origin(text)?);
        }
        Ok(())
    }

    /// The application builder with the options every application shares.
    fn app(&self, observer: &Observer) -> App {
        App::new()
            .observe(observer)
            .cors_origins(Origins::from_list(&self.cors_origin))
            .request_timeout((self.request_timeout > 0).then(|| Duration::from_secs(self.request_timeout)))
            .base_path(self.base_url.clone().filter(|b| !b.is_empty()))
    }

    fn observer(&self) -> Observer {
        Observer::new(!self.no_metrics, self.access_log.then_some(self.log_format))
    }

    /// The folder of `--cache-dir` (`none`, `--no-cache-dir`: none; default: the user's cache).
    fn cache_dir(&self) -> Option<PathBuf> {
        match &self.cache_dir {
            _ if self.no_cache_dir => None,
            Some(dir) if dir.as_os_str() == "none" || dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => aiida_rest::storage::db::persisted::default_cache_dir(),
        }
    }

    fn limits(&self) -> DbLimits {
        DbLimits {
            max_connections: self.max_connections.max(1),
            statement_timeout: Duration::from_secs(self.statement_timeout.max(1)),
        }
    }

    /// The databases of `--database` and of the configuration file, with their options.
    fn databases(&self, catalog: &Catalog) -> Result<Vec<Database>, String> {
        let mut all = catalog.clone();
        for spec in &self.databases {
            all.entries.extend(catalog::parse_spec(spec).map_err(|e| e.to_string())?);
        }
        let all = all.check().map_err(|e| e.to_string())?;
        Ok(all
            .entries
            .into_iter()
            .map(|entry| {
                let mut limits = self.limits();
                if let Some(n) = entry.max_connections {
                    limits.max_connections = n;
                }
                if let Some(s) = entry.statement_timeout {
                    limits.statement_timeout = Duration::from_secs(s);
                }
                let settings = Settings {
                    posting: entry.posting.unwrap_or(!self.no_posting),
                    max_rows: entry.max_rows.unwrap_or(self.max_rows).max(1),
                };
                Database { name: entry.name, source: entry.source, default: entry.default, settings, limits }
            })
            .collect())
    }

    fn serve_options(&self) -> (ServeOptions, Option<u64>) {
        let open_files = server::raise_open_files_limit();
        let options = ServeOptions {
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            max_open_connections: self
                .max_open_connections
                .unwrap_or_else(|| server::default_max_open_connections(open_files))
                .max(1),
            public_url: self.public_url.clone(),
        };
        (options, open_files)
    }
}

/// Blocking threads per core (see `main`): enough for the database pools of several busy
/// databases, a bound on the memory that idle ones keep.
const BLOCKING_THREADS_PER_CORE: usize = 16;

/// `--base-url`: the path, `/aiida` (empty for none).
fn base_url(text: &str) -> Result<String, String> {
    Ok(aiida_rest::http::base::parse_base(text)?.unwrap_or_default())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("aiida_rest=info")),
        )
        .init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Blocking work (SQLite statements past their inline budget, file reads, compression) runs
    // on tokio's blocking threads. Their default bound (512) lets the pool grow past what the
    // queries can use: under CPU contention a thread that has just finished is not yet counted
    // idle when the next task comes, so a new one starts, and each keeps its stack and malloc
    // arena (a 64-connection soak went from 47 to 105 threads and its heap from 39 to 57 MB).
    // The database pools bound the statements anyway; this bounds the threads.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aiida-rest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match cli.command {
        Command::Serve(mut args) => {
            let given = matches.subcommand_matches("serve").expect("the serve subcommand");
            let pristine = (args.clone(), given.clone());
            // The configuration file's options count where the command line and the
            // environment left an option at its default.
            let catalog = match args.config.as_deref().map(catalog::load).transpose() {
                Ok(catalog) => catalog,
                Err(e) => {
                    eprintln!("aiida-rest: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(catalog) = &catalog
                && let Err(e) = args.apply(given, catalog)
            {
                eprintln!("aiida-rest: {}: {e}", args.config.as_deref().unwrap_or(Path::new("")).display());
                return ExitCode::from(2);
            }
            aiida_rest::storage::db::persisted::set_cache_dir(args.cache_dir());
            if catalog.is_some() || !args.databases.is_empty() {
                runtime.block_on(serve_many(args, catalog.unwrap_or_default(), pristine))
            } else {
                runtime.block_on(serve(args))
            }
        }
    };
    // Database queries still running on the blocking pool do not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(args: ServeArgs) -> ExitCode {
    let source = match (&args.storage, &args.profile) {
        (Some(storage), _) => {
            let text = storage.to_string_lossy();
            let is_url = text.starts_with("postgresql://") || text.starts_with("postgres://");
            match (is_url, &args.repository) {
                (true, Some(repository)) => Source::Postgres { url: text.into_owned(), repository: repository.clone() },
                (true, None) => {
                    eprintln!("aiida-rest: a PostgreSQL database needs its file repository: add --repository PATH");
                    return ExitCode::from(2);
                }
                (false, Some(_)) => {
                    eprintln!(
                        "aiida-rest: --repository goes with a postgresql:// URL; archives and profile folders hold their own files"
                    );
                    return ExitCode::from(2);
                }
                (false, None) => Source::Path(storage.clone()),
            }
        }
        (None, _) if args.repository.is_some() => {
            eprintln!("aiida-rest: --repository goes with a postgresql:// URL");
            return ExitCode::from(2);
        }
        (None, Some(name)) => Source::Profile(name.clone()),
        (None, None) => Source::Default,
    };
    let storage = match storage::open(&source, args.limits()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aiida-rest: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = Settings { posting: !args.no_posting, max_rows: args.max_rows.max(1) };
    let description = storage.description.clone();
    let state = AppState { storage: Arc::new(storage), settings: Arc::new(settings) };
    let observer = args.observer();
    observer.set_databases(state.storage.clone());
    let app = args
        .app(&observer)
        .front_doors(&state)
        .nest("/health", databases::Health)
        .nest("/ready", databases::ReadyOne(state.storage.clone()));
    let app = app
        .root(landing::page(vec![landing::Listed::single(state.storage, FRONT_DOORS[0].prefix, FRONT_DOORS[1].prefix)]))
        .into_responder();
    run(&args, app, &description, FRONT_DOORS[0].prefix, async {}).await
}

/// Serves several databases (`--database`, `--config`), each opened on its first request.
/// `pristine`: the options before the configuration file's, and where they came from (a reload
/// applies the file's again).
async fn serve_many(args: ServeArgs, catalog: Catalog, pristine: (ServeArgs, ArgMatches)) -> ExitCode {
    if args.storage.is_some() || args.profile.is_some() || args.repository.is_some() {
        eprintln!("aiida-rest: with --database or --config, name every database there (not as STORAGE or --profile)");
        return ExitCode::from(2);
    }
    let list = match args.databases(&catalog) {
        Ok(list) => list,
        Err(e) => {
            eprintln!("aiida-rest: {e}");
            return ExitCode::from(2);
        }
    };
    let default = list.iter().find(|d| d.default).map(|d| d.name.clone());
    let description = format!("{} databases", list.len());
    let registry = Databases::new(databases::Options {
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        pg_sessions: args.pg_max_sessions.max(1),
        ..databases::Options::default()
    });
    registry.configure(list);
    registry.spawn_closer();
    // The metrics and the access-log setting stay as started across reloads.
    let observer = args.observer();
    observer.set_databases(registry.clone());
    let switch = Switch::new(registry.router(args.app(&observer)));
    let app = switch.router();
    // SIGHUP: read the configuration file again; unchanged databases stay open, requests
    // under way finish on the application they started on.
    let reload = {
        let (args, given) = pristine;
        let registry = registry.clone();
        async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                let Some(path) = &args.config else {
                    tracing::warn!("SIGHUP: no configuration file to reload (--config)");
                    continue;
                };
                // The file's options apply afresh (those of the listener aside: host, port and
                // the connection limits keep their values until a restart).
                let loaded = catalog::load(path).map_err(|e| e.to_string()).and_then(|c| {
                    let mut args = args.clone();
                    args.apply(&given, &c)?;
                    Ok((args.databases(&c)?, args))
                });
                match loaded {
                    Ok((list, args)) => {
                        let changes = registry.configure(list);
                        switch.set(registry.router(args.app(&observer)));
                        tracing::info!(
                            "reloaded {}: added {:?}, removed {:?}, changed {:?}",
                            path.display(),
                            changes.added,
                            changes.removed,
                            changes.changed
                        );
                    }
                    Err(e) => tracing::error!("SIGHUP: {e}; still serving the previous configuration"),
                }
            }
        }
    };
    let (description, prefix) = match &default {
        Some(name) => (format!("{description} under /NAME/api/v4, '{name}' also"), FRONT_DOORS[0].prefix),
        None => (format!("{description} under /NAME/api/v4"), ""),
    };
    run(&args, app, &description, prefix, reload).await
}

/// Listens and serves `app` until SIGTERM or Ctrl-C; `beside` runs alongside.
async fn run(
    args: &ServeArgs,
    app: aiida_rest::http::Responder,
    description: &str,
    prefix: &str,
    beside: impl std::future::Future<Output = ()> + Send + 'static,
) -> ExitCode {
    let (options, open_files) = args.serve_options();
    let addr = format!("{}:{}", args.host, args.port);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("aiida-rest: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let local: SocketAddr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("aiida-rest: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let base = args.base_url.as_deref().unwrap_or("");
    tracing::info!(
        "serving {description} at http://{local}{base}{prefix}/ (at most {} connections, open files limit {})",
        options.max_open_connections,
        open_files.map_or("unknown".to_string(), |n| n.to_string())
    );
    eprintln!(" * REST API running on http://{local}{base}{prefix}");
    // Ctrl-C or a service manager's SIGTERM: stop accepting, give the requests under way the
    // grace period, then stop.
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await; } } => {}
        }
        tracing::info!("shutting down");
    };
    tokio::spawn(beside);
    if let Err(e) = server::serve(listener, app, options, shutdown).await {
        eprintln!("aiida-rest: server error: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
