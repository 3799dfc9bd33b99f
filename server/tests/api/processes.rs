//! Three real `keyport serve` processes on one PostgreSQL database, as behind a load balancer
//! (issue 13), set up and driven only through the command line and HTTP: a key created through one
//! instance is accepted by all, and revoked through one is refused by all within a second (the
//! PostgreSQL change feed; the periodic poll is set to five minutes). With Redis (strict mode),
//! rate limits and quotas hold exactly across the three, usage merges exactly, and a Redis that
//! goes away and comes back costs no request more than the breaker's timeout.
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use domain::testing::TestDb;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_keyport");

struct Instance {
    child: Child,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keyport` with the shared database and server key, and nothing from the caller's environment.
fn keyport(database: &str, dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYPORT_DATABASE_URL", database)
        .env("KEYPORT_SECRET_KEY_FILE", dir.join("server.key"))
        .env("KEYPORT_LOG", "warn")
        .current_dir(dir);
    command
}

/// `keyport serve` on a free port with these extra environment variables, once it is ready.
async fn start_with(
    database: &str,
    dir: &Path,
    client: &reqwest::Client,
    env: &[(&str, String)],
) -> Instance {
    let port = crate::helpers::free_port().await;
    let data = dir.join(format!("instance-{port}"));
    let child = keyport(database, dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .env("KEYPORT_USAGE_FLUSH_SECONDS", "300")
        .env("KEYPORT_SHUTDOWN_GRACE_SECONDS", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("keyport serve starts");
    let instance = Instance {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    loop {
        let ready = client
            .get(format!("{}/readyz", instance.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return instance;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "keyport serve on port {port} not ready after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call(
    client: &reqwest::Client,
    instance: &Instance,
    token: &str,
    path: &str,
    body: Value,
) -> Value {
    let response = client
        .post(format!("{}{path}", instance.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn code(client: &reqwest::Client, instance: &Instance, key: &str) -> String {
    let body: Value = client
        .post(format!("{}/v1/keys/verify", instance.url))
        .json(&json!({ "key": key, "api": "orders" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// How long until every one of `instances` answers `want` for `key` (`None` after `limit`).
async fn until_all(
    client: &reqwest::Client,
    instances: &[&Instance],
    key: &str,
    want: &str,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut pending: Vec<&Instance> = instances.to_vec();
    while started.elapsed() < limit {
        let mut still = Vec::new();
        for instance in pending {
            if code(client, instance, key).await != want {
                still.push(instance);
            }
        }
        if still.is_empty() {
            return Some(started.elapsed());
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Runs `keyport` with `args` on the shared database; its standard output.
fn cli(database: &str, dir: &Path, args: &[&str]) -> String {
    let output = keyport(database, dir)
        .args(args)
        .env("KEYPORT_ADMIN_PASSWORD", "admin passphrase 4 keys")
        .output()
        .unwrap();
    assert!(output.status.success(), "keyport {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// An admin, `before` run on the command line, three instances with `env`, a management key
/// minted on the command line (returned), and an `orders` API created through the first.
async fn cluster(
    database: &str,
    dir: &Path,
    client: &reqwest::Client,
    before: &[&[&str]],
    env: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> ([Instance; 3], String) {
    cli(
        database,
        dir,
        &["admin", "create", "--email", "root@example.com"],
    );
    for args in before {
        cli(database, dir, args);
    }
    let instances = [
        start_with(database, dir, client, &env(0)).await,
        start_with(database, dir, client, &env(1)).await,
        start_with(database, dir, client, &env(2)).await,
    ];
    // A management key minted on the command line works at once on A (the feed, or a lookup
    // of a hash A does not know).
    let token = cli(
        database,
        dir,
        &[
            "keys",
            "create",
            "--owner",
            "root@example.com",
            "--api",
            "keyport",
            "--scopes",
            "admin",
            "--name",
            "ops",
        ],
    );
    call(
        client,
        &instances[0],
        &token,
        "/v1/apis",
        json!({ "slug": "orders", "name": "Orders", "description": "",
                "scopes": [{ "name": "orders:read", "description": "" }], "versions": [] }),
    )
    .await;
    (instances, token)
}

/// 20 trials: a key created through one instance (a different one each time) is accepted by
/// the two others within 1 s, then revoked through it; how long the others took to refuse it.
async fn revocation_trials(
    client: &reqwest::Client,
    instances: &[Instance],
    token: &str,
) -> Vec<Duration> {
    let mut delays = Vec::new();
    for trial in 0..20 {
        // Created and revoked through a different instance each time.
        let through = &instances[trial % 3];
        let others: Vec<&Instance> = instances.iter().filter(|i| i.url != through.url).collect();
        let created = call(
            client,
            through,
            token,
            "/v1/keys",
            json!({ "name": format!("trial {trial}"), "api": "orders", "scopes": ["orders:read"] }),
        )
        .await;
        let key = created["key"].as_str().unwrap();
        let id = created["id"].as_str().unwrap();
        assert!(
            until_all(client, &others, key, "VALID", Duration::from_secs(1))
                .await
                .is_some(),
            "trial {trial}: the other instances do not accept a new key within 1 s"
        );
        call(
            client,
            through,
            token,
            &format!("/v1/keys/{id}/revoke"),
            json!({}),
        )
        .await;
        let refused = until_all(client, &others, key, "REVOKED", Duration::from_secs(1)).await;
        delays.push(refused.unwrap_or_else(|| {
            panic!("trial {trial}: another instance still accepts the key 1 s after its revocation")
        }));
    }
    delays
}

#[tokio::test]
async fn postgres_three_processes_refuse_a_key_revoked_on_one_within_a_second() {
    let pg = TestDb::postgres()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let database = pg.url.clone();

    let (instances, token) = cluster(&database, dir.path(), &client, &[], |_| vec![]).await;
    let delays = revocation_trials(&client, &instances, &token).await;
    crate::helpers::print_delays(
        "three processes: revocation refused by both other instances",
        delays,
    );
    drop(instances);
    pg.cleanup().await;
}

/// `n` verifications of `key` sent at once, spread over the instances in turn: the codes.
async fn spread(
    client: &reqwest::Client,
    instances: &[Instance],
    key: &str,
    n: usize,
) -> Vec<String> {
    let calls = (0..n).map(|i| code(client, &instances[i % instances.len()], key));
    futures_util::future::join_all(calls).await
}

fn count(codes: &[String], code: &str) -> usize {
    codes.iter().filter(|c| *c == code).count()
}

async fn create_key(
    client: &reqwest::Client,
    instance: &Instance,
    token: &str,
    limits: Value,
) -> (String, String) {
    let mut body = json!({ "name": "limited", "api": "orders", "scopes": ["orders:read"] });
    body.as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    let created = call(client, instance, token, "/v1/keys", body).await;
    (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

/// The Redis breaker's state on `metrics` (`Some(true)` while open).
async fn breaker_open(client: &reqwest::Client, metrics: &str) -> Option<bool> {
    let text = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("keyport_redis_breaker_open "))
        .map(|v| v.trim() == "1")
}

/// Waits (at most 5 s) until every instance's breaker is closed, verifying `warm` meanwhile:
/// requests are what prompt an open breaker to probe Redis.
async fn until_global(
    client: &reqwest::Client,
    instances: &[Instance],
    warm: &str,
    metrics: &[String],
) {
    let started = Instant::now();
    loop {
        spread(client, instances, warm, 3).await;
        let mut open = 0;
        for address in metrics {
            open += usize::from(breaker_open(client, address).await != Some(false));
        }
        if open == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{open} instances still bypass Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn postgres_redis_three_processes_share_limits_quotas_and_usage_exactly() {
    let pg = TestDb::postgres()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let mut redis = crate::helpers::OwnRedis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let database = pg.url.clone();
    let mut metrics = Vec::new();
    for _ in 0..3 {
        metrics.push(format!("127.0.0.1:{}", crate::helpers::free_port().await));
    }
    // Everyone on a plan without limits, so only each key's own limits apply.
    let unlimited: &[&str] = &["plans", "create", "--name", "Open"];
    let on_it: &[&str] = &[
        "plans",
        "assign",
        "--email",
        "root@example.com",
        "--plan",
        "Open",
    ];
    let (instances, token) = cluster(&database, dir.path(), &client, &[unlimited, on_it], |i| {
        vec![
            ("KEYPORT_REDIS_URL", redis.url()),
            ("KEYPORT_USAGE_FLUSH_SECONDS", "1".to_owned()),
            ("KEYPORT_METRICS_ADDR", metrics[i].clone()),
        ]
    })
    .await;
    // Changes travel through Redis (the poll runs every second here for the usage below, so
    // the p50 shows which one carried them).
    let delays = revocation_trials(&client, &instances, &token).await;
    assert!(delays.iter().all(|d| *d < Duration::from_secs(1)));
    crate::helpers::print_delays(
        "three processes with Redis: revocation refused by both others",
        delays,
    );
    let hourly = json!({ "ratelimit": { "limit": 20, "period_s": 3600 } });

    // 20 an hour (burst 20): exactly 20 VALID of 60 sent at once over the three.
    let (limited, limited_id) = create_key(&client, &instances[1], &token, hourly.clone()).await;
    let codes = spread(&client, &instances, &limited, 60).await;
    assert_eq!(count(&codes, "VALID"), 20, "{codes:?}");
    assert_eq!(count(&codes, "RATE_LIMITED"), 40, "{codes:?}");
    // 30 a day: exactly 30.
    let (metered, _) = create_key(
        &client,
        &instances[2],
        &token,
        json!({ "quota": { "limit": 30, "period": "day" } }),
    )
    .await;
    let codes = spread(&client, &instances, &metered, 60).await;
    assert_eq!(count(&codes, "VALID"), 30, "{codes:?}");
    assert_eq!(count(&codes, "QUOTA_EXCEEDED"), 30, "{codes:?}");

    // Usage counted on all three (each flushing every second) merges exactly.
    let started = Instant::now();
    let counts = loop {
        let usage = client
            .get(format!("{}/v1/keys/{limited_id}/usage", instances[0].url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for bucket in usage["buckets"].as_array().unwrap_or(&Vec::new()) {
            for (code, n) in bucket["counts"].as_object().unwrap() {
                *counts.entry(code.clone()).or_default() += n.as_u64().unwrap();
            }
        }
        if counts.values().sum::<u64>() >= 60 || started.elapsed() > Duration::from_secs(10) {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(counts.get("VALID"), Some(&20), "{counts:?}");
    assert_eq!(counts.get("RATE_LIMITED"), Some(&40), "{counts:?}");

    // Redis stops: every instance answers from its own limiter (20 each), none waits for Redis.
    redis.stop();
    let (alone, _) = create_key(&client, &instances[0], &token, hourly.clone()).await;
    let mut slowest = Duration::ZERO;
    let mut valid = [0; 3];
    for i in 0..90 {
        let at = Instant::now();
        let code = code(&client, &instances[i % 3], &alone).await;
        slowest = slowest.max(at.elapsed());
        valid[i % 3] += usize::from(code == "VALID");
    }
    println!("Redis down: 90 verifications over three instances, the slowest took {slowest:?}");
    assert_eq!(valid, [20, 20, 20], "each instance's local limit decides");
    assert!(
        slowest < Duration::from_secs(1),
        "a verification waited {slowest:?}"
    );
    for address in &metrics {
        assert_eq!(
            breaker_open(&client, address).await,
            Some(true),
            "{address}"
        );
    }

    // Redis comes back (empty): within seconds every instance decides in Redis again.
    redis.restart().await;
    let back = Instant::now();
    let (warm, _) = create_key(
        &client,
        &instances[0],
        &token,
        json!({ "ratelimit": { "limit": 100000, "period_s": 3600 } }),
    )
    .await;
    until_global(&client, &instances, &warm, &metrics).await;
    println!(
        "Redis back: limits global again on all three after {:?}",
        back.elapsed()
    );
    let (again, _) = create_key(&client, &instances[1], &token, hourly.clone()).await;
    let codes = spread(&client, &instances, &again, 60).await;
    assert_eq!(count(&codes, "VALID"), 20, "{codes:?}");

    // Redis hangs (frozen: connections open, no answers): each instance waits at most the
    // breaker's 50 ms once, then answers from its own limiter; thawed, limits are global again.
    redis.freeze(true);
    let (frozen, _) = create_key(&client, &instances[2], &token, hourly).await;
    let mut slowest = Duration::ZERO;
    let mut valid = 0;
    for i in 0..30 {
        let at = Instant::now();
        valid += usize::from(code(&client, &instances[i % 3], &frozen).await == "VALID");
        slowest = slowest.max(at.elapsed());
    }
    println!("Redis frozen: 30 verifications, the slowest took {slowest:?}");
    assert_eq!(valid, 30, "within each instance's local burst of 20");
    assert!(
        slowest < Duration::from_secs(1),
        "a verification waited {slowest:?}"
    );
    redis.freeze(false);
    let thawed = Instant::now();
    until_global(&client, &instances, &warm, &metrics).await;
    println!(
        "Redis thawed: limits global again after {:?}",
        thawed.elapsed()
    );
    drop(instances);
    pg.cleanup().await;
}
