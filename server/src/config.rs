//! Keyport's configuration: one typed struct, filled from command-line flags, then `KEYPORT_*`
//! environment variables, then defaults.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use clap::Args;

/// Settings of a running Keyport server.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "KEYPORT_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Directory for Keyport's data: the SQLite database and generated secrets.
    #[arg(long, env = "KEYPORT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL; defaults to the SQLite file `<data-dir>/keyport.db`.
    /// A `postgres://` URL runs the same schema on PostgreSQL.
    #[arg(long, env = "KEYPORT_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory holding the built CSS and WASM (`pkg/`), as produced by `cargo leptos build`.
    /// Unset: the site embedded in the binary (release builds of `./dev.sh build`), else
    /// `target/site` relative to the working directory.
    #[arg(long, env = "KEYPORT_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// The server key file (it encrypts TOTP seeds), created when missing. Defaults to
    /// `<data-dir>/secret.key`; keep it elsewhere (e.g. a secrets mount) so that a backup of the
    /// data directory alone cannot decrypt the seeds. `KEYPORT_SECRET_KEY` (hex) wins over both.
    #[arg(long, env = "KEYPORT_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// The address users reach Keyport at, e.g. `https://keys.example.com`. When it starts with
    /// https, the session cookie is `Secure` and `__Host-` prefixed.
    #[arg(long, env = "KEYPORT_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// SMTP server for email, e.g. `smtps://user:password@smtp.example.com` (TLS),
    /// `smtp://user:password@smtp.example.com:587?tls=required` (STARTTLS) or `smtp://127.0.0.1:25`
    /// (no TLS, a local relay). Set: sign-up confirms addresses, "Forgot password?" works and
    /// security notices are mailed (needs `--public-url`). Unset: no email at all.
    #[arg(long, env = "KEYPORT_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// The sender of Keyport's email, e.g. `Keyport <keys@example.com>`. Default:
    /// `Keyport <keyport@HOST>` with the host of `--public-url`.
    #[arg(long, env = "KEYPORT_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Let webhook endpoints be loopback, private or link-local addresses (a closed network,
    /// tests). Off (the default), such URLs are refused when saved and again at every delivery,
    /// after DNS resolution: a defence against server-side request forgery.
    #[arg(long, env = "KEYPORT_WEBHOOKS_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub webhooks_allow_private: bool,

    /// Seconds to wait before each new attempt of a failed webhook delivery, comma-separated
    /// (after the 1st failure, the 2nd, ...). After the last, the delivery gives up; an endpoint
    /// failing for a day is disabled and its owner told.
    #[arg(long, env = "KEYPORT_WEBHOOK_RETRY_SECONDS", value_delimiter = ',', default_values_t = domain::webhooks::SCHEDULE.map(|s| s as u64))]
    pub webhook_retry_seconds: Vec<u64>,

    /// Public keys of secret-scanning partners allowed to post signed leak reports to
    /// `/v1/leaks`, in GitHub's format (`{"public_keys": [{"key_identifier", "key"}]}`, the file
    /// served at https://api.github.com/meta/public_keys/secret_scanning). Without it, only
    /// admins' keys may report.
    #[arg(long, env = "KEYPORT_LEAK_REPORT_KEYS")]
    pub leak_report_keys: Option<PathBuf>,

    /// What a leak report does to a live key: `revoke` it (for good) or `disable` it (an admin
    /// decides later).
    #[arg(long, env = "KEYPORT_LEAK_POLICY", default_value = "revoke", value_parser = ["revoke", "disable"])]
    pub leak_policy: String,

    /// Whether anyone may create an account (`open`) or only admins add users (`closed`).
    #[arg(long, env = "KEYPORT_SIGNUP", default_value = "open", value_parser = ["open", "closed"])]
    pub signup: String,

    /// Whether every account must use two-factor authentication (`true`), or may opt in from
    /// its settings (`false`). Users who turned it on always need their code.
    #[arg(long, env = "KEYPORT_REQUIRE_2FA", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_2fa: bool,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "KEYPORT_SESSION_IDLE_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..))]
    pub session_idle_minutes: i64,

    /// Hours after sign-in after which a session ends, active or not.
    #[arg(long, env = "KEYPORT_SESSION_MAX_HOURS", default_value_t = 12, value_parser = clap::value_parser!(i64).range(1..))]
    pub session_max_hours: i64,

    /// Minutes a 2FA check stays fresh: creating, rotating or revoking a key in the portal later
    /// than this after the last code asks for a new one.
    #[arg(long, env = "KEYPORT_STEP_UP_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(i64).range(1..))]
    pub step_up_minutes: i64,

    /// Proxies (CIDRs, comma separated) whose `X-Forwarded-For` / `X-Real-IP` name the real
    /// client of `/v1/auth`. From any other peer these headers are ignored.
    #[arg(long, env = "KEYPORT_TRUSTED_PROXIES", default_value = "127.0.0.0/8,::1/128", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The API (slug) `/v1/auth` checks keys against when the gateway sends no `X-Keyport-Api`
    /// header. Unset (the default), such requests are refused with 401 `MISSING_API`, so a
    /// gateway route configured without the header fails closed.
    #[arg(long, env = "KEYPORT_AUTH_DEFAULT_API")]
    pub auth_default_api: Option<String>,

    /// Whether `/v1/keys/verify` and `/v1/auth` answer only callers presenting a key of the
    /// `keyport` API with the `verify` scope (`X-Keyport-Token`; the JSON endpoint also takes
    /// `Authorization: Bearer`). For deployments where these endpoints are reachable from
    /// untrusted networks: without it, anyone holding a key can spend its rate limit through them.
    #[arg(long, env = "KEYPORT_VERIFY_REQUIRES_TOKEN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub verify_requires_token: bool,

    /// Seconds between flushes of the in-memory usage counters and quota use to the database.
    /// A crash loses at most this much usage (and quota use).
    #[arg(long, env = "KEYPORT_USAGE_FLUSH_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub usage_flush_seconds: u64,

    /// Redis (or Valkey) shared by several instances, e.g. redis://10.0.0.5:6379: key changes
    /// reach the other instances through it. Unset: through PostgreSQL's NOTIFY on PostgreSQL.
    #[arg(long, env = "KEYPORT_REDIS_URL")]
    pub redis_url: Option<String>,

    /// The most keys each instance keeps in memory (about 2 KB each): all of them when they fit,
    /// else the most recently used; the others are fetched from the database by hash on first
    /// use. A key that leaves the cache in `local` mode starts again with a full burst.
    #[arg(long, env = "KEYPORT_KEY_CACHE_CAPACITY", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub key_cache_capacity: u64,

    /// SQLite's page cache in MiB, in all (shared among its connections); more keeps more of a
    /// large database in memory, less bounds the process' memory. Not used on PostgreSQL.
    #[arg(long, env = "KEYPORT_SQLITE_CACHE_MIB", default_value_t = domain::db::DEFAULT_SQLITE_CACHE_MIB, value_parser = clap::value_parser!(u32).range(8..=65536))]
    pub sqlite_cache_mib: u32,

    /// Where rate limits and quotas are kept: `strict` (in Redis: exact across all instances,
    /// one Redis round trip per verification of a limited key) or `local` (in each instance's
    /// memory: a limit of N allows N per instance). Default: `strict` with `--redis-url`, else
    /// `local`; `strict` needs `--redis-url`.
    #[arg(long, env = "KEYPORT_RATELIMIT_MODE", value_parser = ["strict", "local"])]
    pub ratelimit_mode: Option<String>,

    /// What verification does with a limited key while Redis fails or is slower than 50 ms
    /// (strict mode): `open` answers from this instance's own limiters, `closed` refuses it
    /// with 503 until Redis answers again.
    #[arg(long, env = "KEYPORT_REDIS_FAILURE", default_value = "open", value_parser = ["open", "closed"])]
    pub redis_failure: String,

    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. 127.0.0.1:9100: a listener of its
    /// own, so the public address never exposes them. Unset: no metrics are recorded.
    #[arg(long, env = "KEYPORT_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Seconds between a shutdown signal and closing the listener: meanwhile `/readyz` answers
    /// 503 so a load balancer takes the instance out of its pool, and requests are still served.
    /// Then requests in flight finish and usage is flushed.
    #[arg(long, env = "KEYPORT_SHUTDOWN_GRACE_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_grace_seconds: u64,

    /// Hours of per-minute usage kept (charts of up to 3 hours read minutes).
    #[arg(long, env = "KEYPORT_USAGE_KEEP_MINUTES_HOURS", default_value_t = 48, value_parser = clap::value_parser!(i64).range(2..=24 * 31))]
    pub usage_keep_minutes_hours: i64,

    /// Days of per-hour usage kept.
    #[arg(long, env = "KEYPORT_USAGE_KEEP_HOURS_DAYS", default_value_t = 90, value_parser = clap::value_parser!(i64).range(2..=3650))]
    pub usage_keep_hours_days: i64,

    /// Days of per-day usage kept.
    #[arg(long, env = "KEYPORT_USAGE_KEEP_DAYS_DAYS", default_value_t = 730, value_parser = clap::value_parser!(i64).range(2..=36500))]
    pub usage_keep_days_days: i64,
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    domain::keys::parse_allowlist_entry(s)
        .ok_or_else(|| format!("{s:?} is not an IP address or CIDR range"))
}

impl Config {
    /// The site directory served from disk: `--site-root`, else `target/site`.
    pub fn site_dir(&self) -> PathBuf {
        self.site_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("target/site"))
    }

    /// Whether the site is served from the binary: it carries one and `--site-root` is unset.
    pub fn serves_embedded_site(&self) -> bool {
        self.site_root.is_none() && crate::site::embedded()
    }

    /// A configuration for tests and embedding: defaults everywhere but the data directory.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            database_url: None,
            site_root: None,
            secret_key_file: None,
            public_url: None,
            smtp_url: None,
            mail_from: None,
            webhooks_allow_private: false,
            leak_report_keys: None,
            leak_policy: "revoke".into(),
            webhook_retry_seconds: domain::webhooks::SCHEDULE.map(|s| s as u64).to_vec(),
            signup: "open".into(),
            require_2fa: true,
            session_idle_minutes: 30,
            session_max_hours: 12,
            step_up_minutes: 15,
            trusted_proxies: vec![
                "127.0.0.0/8".parse().expect("a CIDR"),
                "::1/128".parse().expect("a CIDR"),
            ],
            auth_default_api: None,
            verify_requires_token: false,
            usage_flush_seconds: 5,
            shutdown_grace_seconds: 0,
            metrics_addr: None,
            redis_url: None,
            ratelimit_mode: None,
            redis_failure: "open".into(),
            key_cache_capacity: 1_000_000,
            sqlite_cache_mib: domain::db::DEFAULT_SQLITE_CACHE_MIB,
            usage_keep_minutes_hours: 48,
            usage_keep_hours_days: 90,
            usage_keep_days_days: 730,
        }
    }

    /// How long usage is kept at each granularity.
    pub fn usage_retention(&self) -> domain::usage::Retention {
        use domain::usage::{DAY, HOUR};
        domain::usage::Retention {
            minutes: self.usage_keep_minutes_hours * HOUR,
            hours: self.usage_keep_hours_days * DAY,
            days: self.usage_keep_days_days * DAY,
        }
    }

    /// The Redis URL, when one is set.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// The rate-limit mode in effect: `--ratelimit-mode`, else strict with Redis and local
    /// without. Strict without Redis is a configuration error.
    pub fn ratelimit_mode(&self) -> anyhow::Result<domain::verification::global::RateLimitMode> {
        use domain::verification::global::RateLimitMode;
        let mode = match self.ratelimit_mode.as_deref() {
            Some(text) => RateLimitMode::parse(text).ok_or_else(|| {
                anyhow::anyhow!("--ratelimit-mode is strict or local, not {text:?}")
            })?,
            None if self.redis_url().is_some() => RateLimitMode::Strict,
            None => RateLimitMode::Local,
        };
        if mode == RateLimitMode::Strict && self.redis_url().is_none() {
            anyhow::bail!(
                "--ratelimit-mode strict keeps limits in Redis: set --redis-url (KEYPORT_REDIS_URL) \
                 or use --ratelimit-mode local"
            );
        }
        Ok(mode)
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => sqlite_url(&self.data_dir.join("keyport.db")),
        }
    }

    /// The server key that encrypts TOTP seeds: `KEYPORT_SECRET_KEY` (64 hex characters) if set,
    /// else `<data-dir>/secret.key`, created with mode 0600 on first start. Deliberately not a
    /// command-line flag, so it never shows up in `ps` output or shell history.
    pub fn secret_key(&self) -> Result<domain::secret_key::SecretKey, domain::DomainError> {
        let configured = std::env::var("KEYPORT_SECRET_KEY").ok();
        domain::secret_key::SecretKey::load_or_create_at(
            configured.as_deref(),
            &self.secret_key_path(),
        )
    }

    /// Where the server key file is: `--secret-key-file`, else `<data-dir>/secret.key`.
    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(domain::secret_key::FILE_NAME))
    }

    /// The mailer, when SMTP is configured; a clear error when it is configured wrong (or
    /// without the public URL that links in messages need).
    pub fn mailer(&self) -> anyhow::Result<Option<domain::mail::Mailer>> {
        let Some(smtp) = self
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let Some(public_url) = self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            anyhow::bail!(
                "--smtp-url (KEYPORT_SMTP_URL) needs --public-url (KEYPORT_PUBLIC_URL), e.g. \
                 https://keys.example.com: links in emails start with it"
            );
        };
        let from = match self
            .mail_from
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(from) => from.to_owned(),
            None => {
                let host = public_url
                    .split_once("://")
                    .map_or(public_url, |(_, rest)| rest)
                    .split(['/', ':'])
                    .next()
                    .unwrap_or("localhost");
                format!("Keyport <keyport@{host}>")
            }
        };
        Ok(Some(domain::mail::Mailer::new(smtp, &from, public_url)?))
    }

    /// Whether users reach Keyport over HTTPS (per `KEYPORT_PUBLIC_URL`).
    pub fn serves_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://"))
    }

    /// Whether the database is the SQLite file inside the data directory.
    pub fn uses_embedded_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_defaults_to_sqlite_in_the_data_dir() {
        let config = Config::for_data_dir("/tmp/kp");
        assert_eq!(config.database_url(), "sqlite:///tmp/kp/keyport.db");
        assert!(config.uses_embedded_sqlite());
    }

    #[test]
    fn an_explicit_database_url_wins() {
        let config = Config {
            database_url: Some("postgres://postgres@127.0.0.1/keyport".into()),
            ..Config::for_data_dir("data")
        };
        assert_eq!(
            config.database_url(),
            "postgres://postgres@127.0.0.1/keyport"
        );
        assert!(!config.uses_embedded_sqlite());
    }

    #[test]
    fn limits_are_strict_with_redis_and_strict_needs_redis() {
        use domain::verification::global::RateLimitMode;
        let plain = Config::for_data_dir("data");
        assert_eq!(plain.ratelimit_mode().unwrap(), RateLimitMode::Local);
        let redis = Config {
            redis_url: Some("redis://127.0.0.1:6379".into()),
            ..Config::for_data_dir("data")
        };
        assert_eq!(redis.ratelimit_mode().unwrap(), RateLimitMode::Strict);
        let local = Config {
            ratelimit_mode: Some("local".into()),
            ..redis
        };
        assert_eq!(local.ratelimit_mode().unwrap(), RateLimitMode::Local);
        let strict_alone = Config {
            ratelimit_mode: Some("strict".into()),
            redis_url: Some("  ".into()),
            ..Config::for_data_dir("data")
        };
        let err = strict_alone.ratelimit_mode().unwrap_err().to_string();
        assert!(err.contains("set --redis-url"), "{err}");
    }

    // The SMTP transport's connection pool lives on the Tokio runtime.
    #[tokio::test]
    async fn smtp_needs_the_public_url_and_a_usable_sender() {
        let plain = Config::for_data_dir("data");
        assert!(plain.mailer().unwrap().is_none());
        let smtp = Config {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            ..Config::for_data_dir("data")
        };
        let err = smtp.mailer().unwrap_err().to_string();
        assert!(err.contains("--public-url"), "{err}");
        let with_url = Config {
            public_url: Some("https://keys.example.com/".into()),
            ..smtp.clone()
        };
        let mailer = with_url.mailer().unwrap().unwrap();
        assert_eq!(mailer.public_url(), "https://keys.example.com");
        let bad_from = Config {
            mail_from: Some("not an address".into()),
            ..with_url.clone()
        };
        let err = bad_from.mailer().unwrap_err().to_string();
        assert!(err.contains("sender address"), "{err}");
        let bad_url = Config {
            smtp_url: Some("ftp://x".into()),
            ..with_url
        };
        let err = bad_url.mailer().unwrap_err().to_string();
        assert!(err.contains("SMTP URL"), "{err}");
    }

    #[test]
    fn a_blank_database_url_means_the_default() {
        let config = Config {
            database_url: Some("  ".into()),
            ..Config::for_data_dir("data")
        };
        assert_eq!(config.database_url(), "sqlite://data/keyport.db");
    }
}
