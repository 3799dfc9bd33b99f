//! Three real `keyport serve` processes on one PostgreSQL database, as behind a load balancer
//! (issue 13), set up and driven only through the command line and HTTP: a key created through one
//! instance is accepted by all, and revoked through one is refused by all within a second (the
//! PostgreSQL change feed; the periodic poll is set to five minutes).
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

async fn start(database: &str, dir: &Path, client: &reqwest::Client) -> Instance {
    let port = crate::helpers::free_port().await;
    let data = dir.join(format!("instance-{port}"));
    let child = keyport(database, dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .env("KEYPORT_USAGE_FLUSH_SECONDS", "300")
        .env("KEYPORT_SHUTDOWN_GRACE_SECONDS", "0")
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

#[tokio::test]
async fn postgres_three_processes_refuse_a_key_revoked_on_one_within_a_second() {
    let pg = TestDb::postgres()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let database = pg.url.clone();

    let admin = keyport(&database, dir.path())
        .args(["admin", "create", "--email", "root@example.com"])
        .env("KEYPORT_ADMIN_PASSWORD", "admin passphrase 4 keys")
        .output()
        .unwrap();
    assert!(admin.status.success(), "{admin:?}");
    let instances = [
        start(&database, dir.path(), &client).await,
        start(&database, dir.path(), &client).await,
        start(&database, dir.path(), &client).await,
    ];
    let a = &instances[0];
    // A management key minted on the command line reaches the running instances through the
    // feed too: it works at once on A.
    let minted = keyport(&database, dir.path())
        .args([
            "keys",
            "create",
            "--owner",
            "root@example.com",
            "--api",
            "keyport",
        ])
        .args(["--scopes", "admin", "--name", "ops"])
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    call(
        &client,
        a,
        &token,
        "/v1/apis",
        json!({ "slug": "orders", "name": "Orders", "description": "",
                "scopes": [{ "name": "orders:read", "description": "" }], "versions": [] }),
    )
    .await;

    let mut delays = Vec::new();
    for trial in 0..20 {
        // Created and revoked through a different instance each time.
        let through = &instances[trial % 3];
        let others: Vec<&Instance> = instances.iter().filter(|i| i.url != through.url).collect();
        let created = call(
            &client,
            through,
            &token,
            "/v1/keys",
            json!({ "name": format!("trial {trial}"), "api": "orders", "scopes": ["orders:read"] }),
        )
        .await;
        let key = created["key"].as_str().unwrap();
        let id = created["id"].as_str().unwrap();
        assert!(
            until_all(&client, &others, key, "VALID", Duration::from_secs(1))
                .await
                .is_some(),
            "trial {trial}: the other instances do not accept a new key within 1 s"
        );
        call(
            &client,
            through,
            &token,
            &format!("/v1/keys/{id}/revoke"),
            json!({}),
        )
        .await;
        let refused = until_all(&client, &others, key, "REVOKED", Duration::from_secs(1)).await;
        delays.push(refused.unwrap_or_else(|| {
            panic!("trial {trial}: another instance still accepts the key 1 s after its revocation")
        }));
    }
    crate::helpers::print_delays(
        "three processes: revocation refused by both other instances",
        delays,
    );
    drop(instances);
    pg.cleanup().await;
}
