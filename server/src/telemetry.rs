//! Logging: `tracing` to stderr, filtered by `KEYPORT_LOG` (or `RUST_LOG`), default `info`.
use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_env("KEYPORT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    // A second init (e.g. in tests) is harmless: keep the first subscriber.
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
