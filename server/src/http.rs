//! The HTTP application: Leptos pages, static assets, JSON endpoints and the middleware around
//! them; and [`Server`], which binds a port and serves it.
use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    body::Body,
    extract::MatchedPath,
    http::{Request, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use domain::{
    Database,
    accounts::Accounts,
    keys::Keys,
    usage::{Usage, recorder::Recorder},
    verification::Verifier,
};
use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer, compression::CompressionLayer, limit::RequestBodyLimitLayer,
    set_header::SetResponseHeaderLayer, timeout::TimeoutLayer, trace::TraceLayer,
};

use crate::{AppState, Config, auth, routes::health, session_store::DbSessionStore};

/// Largest request body accepted anywhere; endpoints may set tighter limits.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A request taking longer than this is cut off with 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Leptos options for this configuration. cargo-leptos names the bundle after the
/// workspace's `[[workspace.metadata.leptos]] name`, so the files are `pkg/keyport.{js,wasm,css}`.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") | Ok("dev") | Ok("development") => Env::DEV,
        _ => Env::PROD,
    };
    // cargo-leptos runs the binary with LEPTOS_SITE_ROOT; honour it when KEYPORT_SITE_ROOT is unset.
    let site_root = match std::env::var("LEPTOS_SITE_ROOT") {
        Ok(root) if std::env::var_os("KEYPORT_SITE_ROOT").is_none() => root,
        _ => config.site_dir().display().to_string(),
    };
    LeptosOptions::builder()
        .output_name("keyport")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .env(env)
        .build()
}

/// The whole application as an axum router.
pub fn build_router(state: AppState, config: &Config) -> Router {
    // One handler per page, each declaring its access; `render` turns their data into HTML on
    // Leptos' executor (already running when the router is built twice, as tests do).
    let _ = any_spawner::Executor::init_tokio();
    let pages = crate::pages::routes().layer(middleware::from_fn_with_state(
        state.clone(),
        crate::pages::render,
    ));
    // Pages and their forms: behind the session cookie and the same-origin guard.
    let portal = Router::new()
        .merge(pages)
        .merge(auth::routes())
        .merge(crate::email::routes())
        .merge(crate::portal::routes())
        .merge(crate::portal_usage::routes())
        .fallback(static_file_or_not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::session_context,
        ))
        .layer(auth::session_layer(
            config,
            DbSessionStore::new(state.db.clone()),
        ))
        .layer(middleware::from_fn(auth::same_origin_guard));
    // Health and the JSON API: no cookies, no sessions.
    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(crate::api::routes())
        .merge(bench_routes())
        .merge(portal)
        .with_state(state);
    if config.metrics_addr.is_some() {
        router = router.layer(middleware::from_fn(crate::metrics::track));
    }
    // Security headers on every response that did not set its own (pages set their CSP).
    let https = config
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    for (name, value) in crate::security::default_headers(https) {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| request.uri().path().to_owned());
                tracing::info_span!("request", method = %request.method(), route)
            }),
        )
}

/// The benchmark's baseline endpoint: only in a binary built with the `bench` feature, and only
/// when asked for.
#[cfg(feature = "bench")]
fn bench_routes() -> Router<AppState> {
    if std::env::var("KEYPORT_BENCH_BASELINE").is_ok_and(|v| v == "1") {
        Router::new().route(
            "/bench/baseline",
            axum::routing::post(crate::bench::baseline),
        )
    } else {
        Router::new()
    }
}

#[cfg(not(feature = "bench"))]
fn bench_routes() -> Router<AppState> {
    Router::new()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":{"code":"internal","message":"Something went wrong on our side; it has been logged."}}"#,
    )
        .into_response()
}

/// A file of the site (embedded in the binary, else from the site directory), or the 404 page.
async fn static_file_or_not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: axum::http::Uri,
    request: Request<Body>,
) -> Response {
    if state.embedded_site
        && let Some(file) = crate::site::serve(uri.path(), request.headers())
    {
        return file;
    }
    let nonce = crate::security::new_nonce();
    let for_page = nonce.clone();
    let mut response = leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        move || leptos::prelude::provide_context(for_page.clone()),
        app::shell,
    )(uri, axum::extract::State(state), request)
    .await;
    crate::security::set_page_policy(&mut response, &nonce);
    response
}

/// Limits kept in Redis, in strict mode (see `--ratelimit-mode`).
fn global_limits(
    config: &Config,
) -> anyhow::Result<Option<domain::verification::global::GlobalLimits>> {
    use domain::verification::global::{GlobalLimits, RateLimitMode, RedisFailure};
    let (RateLimitMode::Strict, Some(url)) = (config.ratelimit_mode()?, config.redis_url()) else {
        return Ok(None);
    };
    let failure = RedisFailure::parse(&config.redis_failure).ok_or_else(|| {
        anyhow::anyhow!(
            "--redis-failure is open or closed, not {:?}",
            config.redis_failure
        )
    })?;
    Ok(Some(GlobalLimits::open(url, failure)?))
}

/// A bound, not yet serving, Keyport server.
pub struct Server {
    listener: TcpListener,
    router: Router,
    pub state: AppState,
    /// The change feed between instances and this instance's name on it (`None` on SQLite
    /// without Redis).
    feed: Option<(domain::feed::Feed, String)>,
    /// How long `/readyz` answers 503 before the listener closes.
    shutdown_grace: Duration,
    /// The Prometheus listener, when `--metrics-addr` is set.
    metrics: Option<TcpListener>,
    /// The outbox and the channels its worker delivers through (webhooks; email when SMTP is
    /// configured).
    delivery: (
        domain::outbox::Outbox,
        Vec<std::sync::Arc<dyn domain::outbox::Channel>>,
    ),
}

impl Server {
    /// Opens (and migrates) the database and binds the listening socket. Port 0 picks a free port.
    pub async fn bind(config: &Config) -> anyhow::Result<Server> {
        let db = open_database(config).await?;
        // The dummy hash that unknown emails are checked against is computed now, so the first
        // sign-in with an unknown email after a restart is not faster than a wrong password.
        domain::accounts::password::warm_up();
        let leptos = leptos_options(config);
        let embedded_site = config.serves_embedded_site();
        if embedded_site {
            tracing::info!("serving the site embedded in the binary");
        } else {
            warn_if_assets_missing(&leptos);
        }
        let verifier = Verifier::with_options(
            db.clone(),
            Recorder::new(db.clone()),
            domain::verification::verifier::Options {
                global: global_limits(config)?,
                key_cache_capacity: config.key_cache_capacity,
            },
        );
        let loading = std::time::Instant::now();
        let loaded = verifier.load().await.context("cannot load the keys")?;
        tracing::info!(
            keys = loaded,
            capacity = config.key_cache_capacity,
            took_ms = loading.elapsed().as_millis() as u64,
            "verifier ready"
        );
        // Every committed change to a key, plan, version or user reaches the verifier at once.
        let changes: std::sync::Arc<dyn domain::changes::KeyChanges> =
            std::sync::Arc::new(verifier.clone());
        let secret_key = config.secret_key()?;
        let mut accounts =
            Accounts::new(db.clone(), secret_key.clone()).with_changes(changes.clone());
        let mut keys = Keys::new(db.clone()).with_changes(changes);
        // Every message leaves through the outbox: webhook deliveries always, email when SMTP
        // is configured.
        let mailer = config.mailer()?;
        let deliveries = domain::outbox::Outbox::new(db.clone(), secret_key.clone());
        let outbox = mailer.as_ref().map(|_| deliveries.clone());
        if let Some(outbox) = &outbox {
            accounts = accounts.with_outbox(outbox.clone());
            keys = keys.with_verified_email_required();
        }
        let webhooks =
            domain::webhooks::Webhooks::new(db.clone(), secret_key.clone(), deliveries.clone())
                .allowing_private_targets(config.webhooks_allow_private);
        accounts = accounts.with_webhooks(webhooks.clone());
        keys = keys.with_webhooks(webhooks.clone());
        let mut channels: Vec<std::sync::Arc<dyn domain::outbox::Channel>> =
            vec![std::sync::Arc::new(
                webhooks.sender(outbox.clone()).with_schedule(
                    config
                        .webhook_retry_seconds
                        .iter()
                        .map(|s| chrono::Duration::seconds(*s as i64))
                        .collect(),
                ),
            )];
        if let Some(mailer) = mailer {
            channels.push(std::sync::Arc::new(domain::outbox::EmailChannel::new(
                mailer,
            )));
        }
        // Other instances sharing the database hear of each change at once: through Redis when
        // it is configured, else through PostgreSQL's NOTIFY.
        let instance = domain::feed::instance_id();
        let feed = domain::feed::Feed::choose(&db, config.redis_url())?;
        if let Some(feed) = &feed {
            let publisher = feed.publisher(&db, &instance)?;
            accounts = accounts.with_changes(publisher.clone());
            keys = keys.with_changes(publisher);
        }
        let leak_keys = match &config.leak_report_keys {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read --leak-report-keys {}", path.display())
                })?;
                domain::leaks::TrustedKeys::from_json(&text)
                    .map_err(|e| anyhow::anyhow!("--leak-report-keys {}: {e}", path.display()))?
            }
            None => domain::leaks::TrustedKeys::default(),
        };
        let leaks = domain::leaks::LeakReports::new(
            db.clone(),
            keys.clone(),
            domain::leaks::Policy::parse(&config.leak_policy).unwrap_or_default(),
        );
        let notifier = domain::notify::Notifier::new(db.clone(), outbox.clone())
            .with_quotas(verifier.clone())
            .with_webhooks(webhooks.clone());
        let state = AppState::new(crate::state::Shared {
            notifier,
            usage: Usage::new(db.clone(), keys.clone()),
            alerts: domain::usage::alerts::Alerts::new(db.clone()),
            keys,
            verifier,
            draining: Default::default(),
            usage_retention: config.usage_retention(),
            trusted_proxies: std::sync::Arc::new(config.trusted_proxies.clone()),
            embedded_site,
            usage_flush: Duration::from_secs(config.usage_flush_seconds),
            db,
            accounts,
            leptos,
            session_idle_minutes: config.session_idle_minutes,
            session_max_seconds: config.session_max_hours * 3600,
            signup_open: config.signup == "open",
            require_2fa: config.require_2fa,
            step_up_seconds: config.step_up_minutes * 60,
            auth_default_api: config.auth_default_api.as_deref().map(std::sync::Arc::from),
            verify_requires_token: config.verify_requires_token,
            secret_key,
            outbox: outbox.clone(),
            webhooks,
            leaks,
            leak_keys: std::sync::Arc::new(leak_keys),
        });
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let router = build_router(state.clone(), config);
        let metrics = match config.metrics_addr {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        Ok(Server {
            listener,
            router,
            state,
            feed: feed.map(|feed| (feed, instance)),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_seconds),
            metrics,
            delivery: (deliveries, channels),
        })
    }

    /// The application, for calling it in-process (the fuzz tests do).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves; then answers `/readyz` with 503 for the grace period
    /// while still serving, finishes the requests in flight and flushes usage.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let background = tokio::spawn(background(self.state.clone()));
        let metrics = self
            .metrics
            .map(|listener| tokio::spawn(crate::metrics::serve(listener, self.state.clone())));
        let feed = self
            .feed
            .map(|(feed, origin)| tokio::spawn(feed.follow(origin, self.state.verifier.clone())));
        let (outbox, channels) = self.delivery;
        let delivery = tokio::spawn(outbox.run(channels, OUTBOX_IDLE));
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown({
            let draining = self.state.draining.clone();
            let grace = self.shutdown_grace;
            async move {
                shutdown.await;
                draining.store(true, std::sync::atomic::Ordering::Relaxed);
                if !grace.is_zero() {
                    tracing::info!(
                        seconds = grace.as_secs(),
                        "draining: /readyz answers 503 until the listener closes"
                    );
                    tokio::time::sleep(grace).await;
                }
            }
        })
        .await
        .context("the HTTP server failed");
        background.abort();
        delivery.abort();
        for task in [feed, metrics].into_iter().flatten() {
            task.abort();
        }
        // Whatever was counted since the last flush is written before the process exits.
        match self.state.verifier.flush().await {
            Ok(n) => tracing::info!(verifications = n, "usage flushed at shutdown"),
            Err(error) => tracing::error!(%error, "cannot flush usage at shutdown"),
        }
        served
    }
}

/// How often the outbox worker looks for due messages when nothing woke it (a message queued
/// on this instance wakes it at once; one queued on another, or due for a retry, waits at most
/// this long).
const OUTBOX_IDLE: Duration = Duration::from_secs(5);

/// Legacy recovery codes rewrapped per minute: each costs one argon2id hash on the blocking
/// pool (tens of milliseconds), so an upgrade spreads the work instead of stalling start-up.
const LEGACY_CODES_PER_MINUTE: u64 = 200;

/// Every few seconds: write usage and quota use, and pick up keys changed by other instances
/// sharing the database. At start and every minute: compact the usage rollups, prune expired
/// sessions, rewrap legacy recovery codes and look for usage anomalies.
async fn background(state: AppState) {
    let mut tick = tokio::time::interval(state.usage_flush);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since = chrono::Utc::now();
    let mut last_compaction: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        let flushed = state.verifier.tick().await;
        crate::metrics::flushed(started.elapsed(), flushed.is_ok());
        if let Err(error) = flushed {
            tracing::error!(%error, "cannot flush usage; keeping it for the next try");
        }
        if last_compaction.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            last_compaction = Some(std::time::Instant::now());
            match state
                .verifier
                .recorder()
                .compact(&state.usage, chrono::Utc::now(), &state.usage_retention)
                .await
            {
                Ok(done) => tracing::debug!(?done, "usage compacted"),
                Err(error) => tracing::error!(%error, "cannot compact usage"),
            }
            // Journal rows an instance that died never closed (its last flush interval of
            // counts is all a crash loses).
            if let Err(error) = state
                .verifier
                .recorder()
                .fold_orphans(chrono::Utc::now())
                .await
            {
                tracing::error!(%error, "cannot fold the usage journal of a stopped instance");
            }
            match domain::sessions::delete_expired(&state.db, chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(sessions = n, "expired sessions pruned"),
                Err(error) => tracing::error!(%error, "cannot prune expired sessions"),
            }
            match state
                .accounts
                .rewrap_legacy_recovery_codes(LEGACY_CODES_PER_MINUTE)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(codes = n, "legacy recovery codes rewrapped as argon2id"),
                Err(error) => tracing::error!(%error, "cannot rewrap legacy recovery codes"),
            }
            let alerts_started = std::time::Instant::now();
            match state.alerts.run(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(alerts = n, "usage anomalies found"),
                Err(error) => tracing::error!(%error, "cannot look for usage anomalies"),
            }
            tracing::debug!(
                took_ms = alerts_started.elapsed().as_millis() as u64,
                "looked for usage anomalies"
            );
            match state.notifier.run(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(emails = n, "notifications queued"),
                Err(error) => tracing::error!(%error, "cannot queue notifications"),
            }
        }
        let now = chrono::Utc::now();
        match state
            .verifier
            .refresh_changed_since(since - chrono::Duration::seconds(2))
            .await
        {
            Ok(_) => since = now,
            Err(error) => tracing::error!(%error, "cannot refresh changed keys"),
        }
    }
}

/// Opens the configured database (creating the data directory for the embedded SQLite file)
/// and applies pending migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    if config.uses_embedded_sqlite() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let url = config.database_url();
    Database::connect_with_and_migrate(&url, config.sqlite_cache_mib)
        .await
        .with_context(|| format!("cannot open the database {}", domain::db::redact_url(&url)))
}

fn warn_if_assets_missing(options: &LeptosOptions) {
    let js = std::path::Path::new(&*options.site_root).join("pkg/keyport.js");
    if !js.exists() {
        tracing::warn!(
            site_root = %options.site_root,
            "the CSS/WASM bundle is missing ({} not found): pages will render unstyled. \
             Build it with `./dev.sh build` (or `cargo leptos build --release`) and start keyport \
             from the repository root, or point KEYPORT_SITE_ROOT at the built site",
            js.display()
        );
    }
}
