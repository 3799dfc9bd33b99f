//! The `keyport` command line.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Config, Server, telemetry};

#[derive(Parser, Debug)]
#[command(
    name = "keyport",
    version,
    about = "Keyport: a self-hosted developer portal for API keys"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply database migrations, then serve the portal and the API.
    Serve(Config),
    /// Apply database migrations and exit.
    Migrate(Config),
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Benchmark helpers (seed many keys); not for production data. Only in a binary built
    /// with the `bench` feature (bench/run.sh does that).
    #[cfg(feature = "bench")]
    #[command(hide = true)]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Manage API keys (for automation).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage plans (for automation; the portal's Plans page does the same).
    Plans {
        #[command(subcommand)]
        command: PlansCommand,
    },
    /// Find Keyport keys in files, offline: prints file:line:column and each key's start (never
    /// the whole key) and exits 1 when any is found, for a pre-commit hook or a CI step.
    Scan {
        /// Files or directories (default: the current one). `.gitignore` is respected; dotfiles
        /// such as `.env` are read.
        paths: Vec<std::path::PathBuf>,
        /// Send the keys found to this Keyport server (its URL), which revokes the live ones.
        #[arg(long, requires = "token")]
        report: Option<String>,
        /// An admin's management key, for --report.
        #[arg(long, env = "KEYPORT_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    /// Create a plan and print its id. Without limits the plan is unlimited.
    Create {
        /// A unique name, e.g. Gateways.
        #[arg(long)]
        name: String,
        /// Requests per period (with --rate-period-s).
        #[arg(long, requires = "rate_period_s")]
        rate_limit: Option<u32>,
        /// The rate limit's period in seconds.
        #[arg(long, requires = "rate_limit")]
        rate_period_s: Option<u32>,
        /// Requests allowed at once above the steady rate.
        #[arg(long)]
        burst: Option<u32>,
        /// Requests per quota period (with --quota-period).
        #[arg(long, requires = "quota_period")]
        quota: Option<u64>,
        #[arg(long, value_parser = ["day", "month"], requires = "quota")]
        quota_period: Option<String>,
        /// The rate limit and quota are shared by all of a developer's keys (else each key's).
        #[arg(long)]
        per_developer: bool,
        #[command(flatten)]
        config: Config,
    },
    /// Put a user on a plan (by the plan's name or id).
    Assign {
        /// The user's email address.
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: String,
        #[command(flatten)]
        config: Config,
    },
}

#[cfg(feature = "bench")]
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Creates a bench user, a `bench` API with an unlimited plan, and keys; writes the
    /// plaintexts one per line: valid keys, rate-limited keys, and checksum-valid unknown keys.
    Seed {
        #[arg(long, default_value_t = 100_000)]
        keys: usize,
        #[arg(long, default_value_t = 1_000)]
        limited_keys: usize,
        /// Keys with a rate limit they never reach (a million a second), so every verification
        /// of one is metered (in Redis, in strict mode) and VALID: metered.txt.
        #[arg(long, default_value_t = 0)]
        metered_keys: usize,
        /// Directory for valid.txt, limited.txt, metered.txt and unknown.txt.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        config: Config,
    },
    /// Seeds 10 million verifications over 30 days for one key (and lighter traffic for 1,000
    /// more), compacts them, and times the 30-day key chart and the admin dashboard queries.
    Usage {
        #[command(flatten)]
        config: Config,
    },
    /// Prints what the database holds, as `name=count` lines: verifications in the minute
    /// buckets, usage journal rows and the verifications in them, keys, users, audit events
    /// (bench/soak.sh and bench/crash.sh compare them with the requests sent).
    Totals {
        #[command(flatten)]
        config: Config,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key for a user and print only the plaintext key on standard output. Acts as an
    /// admin (the plan's limits do not apply) and is audited with the actor `cli`.
    Create {
        /// The owner's email address.
        #[arg(long)]
        owner: String,
        /// The API's slug.
        #[arg(long)]
        api: String,
        /// Comma-separated scopes, e.g. orders:read,orders:write.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// A name for the key, e.g. where it is used.
        #[arg(long)]
        name: String,
        /// Days until the key expires; without it the key never expires.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        config: Config,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an admin account. The password comes from KEYPORT_ADMIN_PASSWORD or, when that is
    /// unset, from the first line of standard input (never from the command line). The admin
    /// sets up two-factor authentication at first sign-in.
    Create {
        /// The admin's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        config: Config,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => {
            let server = Server::bind(&config).await?;
            tracing::info!(
                addr = %server.local_addr(),
                database = %domain::db::redact_url(&config.database_url()),
                "Keyport is listening on http://{}",
                server.local_addr()
            );
            server.run(shutdown_signal()).await
        }
        Command::Scan {
            paths,
            report,
            token,
        } => {
            let summary = crate::scan::scan(&paths);
            for f in &summary.findings {
                println!(
                    "{}:{}:{}: {}… (a Keyport key: its checksum is valid)",
                    f.path.display(),
                    f.line,
                    f.column,
                    f.key.start()
                );
            }
            let seconds = summary.elapsed.as_secs_f64().max(1e-6);
            eprintln!(
                "scanned {} files ({:.1} MB, {} binary skipped) in {:.2} s ({:.0} files/s): {} Keyport key(s) found",
                summary.files,
                summary.bytes as f64 / 1e6,
                summary.skipped_binary,
                seconds,
                summary.files as f64 / seconds,
                summary.findings.len()
            );
            if let (Some(server), Some(token), false) = (report, token, summary.findings.is_empty())
            {
                for (start, live) in crate::scan::report(&server, &token, &summary.findings).await?
                {
                    println!(
                        "{start}…: {}",
                        if live {
                            "a live key of that server: revoked (or disabled) now"
                        } else {
                            "not a live key of that server"
                        }
                    );
                }
            }
            if !summary.findings.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Migrate(config) => {
            let db = crate::http::open_database(&config).await?;
            let applied = db.applied_migrations().await?;
            tracing::info!(
                database = %domain::db::redact_url(&config.database_url()),
                migrations = applied.len(),
                "database schema is up to date"
            );
            db.close().await?;
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, config },
        } => {
            let password = admin_password()?;
            let admin = create_admin(&config, &email, &password).await?;
            tracing::info!(user_id = %admin.id, email = %admin.email, "admin created");
            println!(
                "Created admin {} ({}). They set up two-factor authentication at first sign-in.",
                admin.email, admin.id
            );
            Ok(())
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Seed {
                    keys,
                    limited_keys,
                    metered_keys,
                    out,
                    config,
                },
        } => {
            let db = crate::http::open_database(&config).await?;
            crate::bench::seed(&db, &config, keys, (limited_keys, metered_keys), &out).await?;
            db.close().await?;
            Ok(())
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command: BenchCommand::Totals { config },
        } => {
            let db = crate::http::open_database(&config).await?;
            crate::bench::totals(&db).await?;
            db.close().await?;
            Ok(())
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command: BenchCommand::Usage { config },
        } => {
            let db = crate::http::open_database(&config).await?;
            crate::bench::usage(&db, &config).await?;
            db.close().await?;
            Ok(())
        }
        Command::Plans { command } => {
            let config = match &command {
                PlansCommand::Create { config, .. } | PlansCommand::Assign { config, .. } => {
                    config.clone()
                }
            };
            let db = crate::http::open_database(&config).await?;
            let publisher = cli_publisher(&db, &config)?;
            let result = plans(&db, publisher, command).await;
            db.close().await?;
            println!("{}", result?);
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    owner,
                    api,
                    scopes,
                    name,
                    expires_in_days,
                    config,
                },
        } => {
            let db = crate::http::open_database(&config).await?;
            let publisher = cli_publisher(&db, &config)?;
            let result =
                create_key(&db, publisher, &owner, &api, scopes, &name, expires_in_days).await;
            db.close().await?;
            println!("{}", result?);
            Ok(())
        }
    }
}

/// Creates a key as the command line (an admin actor named `cli`); returns the plaintext.
async fn create_key(
    db: &domain::Database,
    publisher: Option<Publisher>,
    owner: &str,
    api: &str,
    scopes: Vec<String>,
    name: &str,
    expires_in_days: Option<u32>,
) -> anyhow::Result<String> {
    use domain::{
        keys::{Keys, NewKey},
        service::{Actor, ServiceError},
    };
    let accounts =
        domain::accounts::Accounts::new(db.clone(), domain::secret_key::SecretKey::generate());
    let user = accounts
        .find_by_email(owner)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user has the email {owner}"))?;
    let actor = Actor::cli();
    let new = NewKey {
        name: name.to_owned(),
        api: api.to_owned(),
        scopes: scopes
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        expires_at: expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(d as i64)),
        owner_id: Some(user.id),
        ..Default::default()
    };
    let mut keys = Keys::new(db.clone());
    if let Some(publisher) = publisher {
        keys = keys.with_changes(publisher);
    }
    match keys.create(&actor, new).await {
        Ok(created) => Ok(created.plaintext.expose().to_owned()),
        Err(ServiceError::Invalid(errors)) => Err(anyhow::anyhow!(
            "{}",
            errors
                .0
                .iter()
                .map(|(f, m)| format!("--{}: {m}", f.replace('_', "-")))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Err(e.into()),
    }
}

/// `keyport plans ...` as the command line (an admin actor named `cli`, audited); returns what
/// to print.
async fn plans(
    db: &domain::Database,
    publisher: Option<Publisher>,
    command: PlansCommand,
) -> anyhow::Result<String> {
    use domain::{
        catalog::{Catalog, PlanInput, Quota, QuotaPeriod, RateLimit},
        service::{Actor, ServiceError},
    };
    let mut catalog = Catalog::new(db.clone());
    if let Some(publisher) = publisher {
        catalog = catalog.with_changes(publisher);
    }
    let actor = Actor::cli();
    let explain = |e: ServiceError| match e {
        ServiceError::Invalid(errors) => anyhow::anyhow!(
            "{}",
            errors
                .0
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.into(),
    };
    match command {
        PlansCommand::Create {
            name,
            rate_limit,
            rate_period_s,
            burst,
            quota,
            quota_period,
            per_developer,
            ..
        } => {
            let input = PlanInput {
                name,
                rate_limit: rate_limit
                    .zip(rate_period_s)
                    .map(|(limit, period_s)| RateLimit { limit, period_s }),
                burst,
                quota: quota
                    .zip(quota_period.as_deref().and_then(QuotaPeriod::parse))
                    .map(|(limit, period)| Quota { limit, period }),
                per_developer,
                ..Default::default()
            };
            let plan = catalog.create_plan(&actor, input).await.map_err(explain)?;
            Ok(plan.id)
        }
        PlansCommand::Assign { email, plan, .. } => {
            let accounts = domain::accounts::Accounts::new(
                db.clone(),
                domain::secret_key::SecretKey::generate(),
            );
            let user = accounts
                .find_by_email(&email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user has the email {email}"))?;
            let plans = catalog.list_plans().await.map_err(explain)?;
            let found = plans
                .iter()
                .find(|p| p.id == plan || p.name == plan)
                .ok_or_else(|| anyhow::anyhow!("no plan is named {plan}"))?;
            catalog
                .assign_plan(&actor, &user.id, Some(&found.id))
                .await
                .map_err(explain)?;
            Ok(format!("{email} is on the plan {}", found.name))
        }
    }
}

type Publisher = std::sync::Arc<dyn domain::changes::KeyChanges>;

/// What announces the CLI's changes to serving instances at once: the feed they follow (Redis,
/// or PostgreSQL's NOTIFY), if any.
fn cli_publisher(db: &domain::Database, config: &Config) -> anyhow::Result<Option<Publisher>> {
    Ok(
        match domain::feed::Feed::choose(db, config.redis_url.as_deref())? {
            Some(feed) => Some(feed.publisher(db, "cli")?),
            None => None,
        },
    )
}

/// Creates an admin account in the configured database.
pub async fn create_admin(
    config: &Config,
    email: &str,
    password: &str,
) -> anyhow::Result<domain::accounts::User> {
    let db = crate::http::open_database(config).await?;
    let accounts = domain::accounts::Accounts::new(db.clone(), config.secret_key()?);
    let result = accounts.create_admin(email, password).await;
    db.close().await?;
    Ok(result?)
}

fn admin_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("KEYPORT_ADMIN_PASSWORD") {
        return Ok(password);
    }
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for the new admin (input is visible; or set KEYPORT_ADMIN_PASSWORD): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "no password given: set KEYPORT_ADMIN_PASSWORD or pipe it on standard input"
    );
    Ok(password.to_owned())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
