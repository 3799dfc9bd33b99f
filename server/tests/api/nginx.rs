//! Debian's real nginx in front of an upstream, asking Keyport with `auth_request`, using the
//! shipped `examples/nginx/keyport.conf` (only the ports changed). The test command installs
//! nginx when it is missing; without it this test fails rather than pass silently.
use std::{
    net::SocketAddr,
    process::{Child, Command},
    time::Duration,
};

use domain::keys::NewKey;

use crate::{
    helpers::{TestApp, free_port, upstream},
    verify_support::*,
};

const NGINX: &str = "/usr/sbin/nginx";

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

async fn start_nginx(keyport: &str, upstream: SocketAddr) -> (Nginx, u16, tempfile::TempDir) {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "{NGINX} is missing: install Debian's nginx (./dev.sh test does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let example = include_str!("../../../examples/nginx/keyport.conf");
    let site = example
        .replace("server 127.0.0.1:3000;", &format!("server {keyport};"))
        .replace("server 127.0.0.1:8080;", &format!("server {upstream};"))
        .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(site, example, "the example's ports were found and replaced");
    let nginx = run_nginx(&site, port, &dir).await;
    (nginx, port, dir)
}

/// Runs nginx with `site` in `dir` until it accepts connections on `port`.
async fn run_nginx(site: &str, port: u16, dir: &tempfile::TempDir) -> Nginx {
    let d = dir.path().display();
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    let user = if unsafe_is_root() { "user root;" } else { "" };
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let child = Command::new(NGINX)
        .args([
            "-e",
            &format!("{d}/error.log"),
            "-p",
            &d.to_string(),
            "-c",
            &format!("{d}/nginx.conf"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
}

fn unsafe_is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

#[tokio::test]
async fn nginx_auth_request_lets_valid_keys_through_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let keyport = app.address.trim_start_matches("http://").to_owned();
    let (nginx, port, dir) = start_nginx(&keyport, upstream().await).await;
    let client = reqwest::Client::new();
    let get = |key: Option<String>| {
        let mut r = client.get(format!("http://127.0.0.1:{port}/orders/42"));
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        r.send()
    };

    // A valid key reaches the upstream, which learns the key id.
    let (valid, id) = key(&app, &w.dev, orders_key()).await;
    let r = get(Some(valid.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("upstream ok for {id}"));

    // No key, or a bad one: 401 with WWW-Authenticate, never reaching the upstream.
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = get(Some(domain::keys::PlainKey::generate().expose().to_owned()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-keyport-code"], "NOT_FOUND");
    assert!(!r.text().await.unwrap().contains("upstream ok"));

    // The location requires orders:read; a key with only orders:write is forbidden.
    let (write_only, _) = key(
        &app,
        &w.dev,
        NewKey {
            scopes: vec!["orders:write".into()],
            ..orders_key()
        },
    )
    .await;
    let r = get(Some(write_only)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-keyport-code"], "INSUFFICIENT_SCOPE");

    // A rate-limited key: 429 with Retry-After at the client (not nginx's default 500).
    let (slow, _) = key(&app, &w.dev, limited(Some((1, 60)), None)).await;
    assert_eq!(get(Some(slow.clone())).await.unwrap().status(), 200);
    let r = get(Some(slow)).await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "{:?}",
        std::fs::read_to_string(dir.path().join("error.log"))
    );
    assert_eq!(r.headers()["x-keyport-code"], "RATE_LIMITED");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    drop(nginx);
    app.cleanup().await;
}

/// `curl` over TLS (the test's own certificate) through nginx: the status and the
/// `X-Keyport-Code` header. On the blocking pool, so the instances in this runtime can answer.
async fn curl_auth(port: u16, key: &str) -> (String, String) {
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || curl_auth_blocking(port, &key))
        .await
        .unwrap()
}

fn curl_auth_blocking(port: u16, key: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "status=%{http_code}",
        ])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args([
            "-H",
            "X-Keyport-Api: orders",
            "-H",
            "X-Keyport-Scopes: orders:read",
        ])
        // A client naming its own address: the example overwrites it with the real one.
        .args(["-H", "X-Forwarded-For: 203.0.113.9"])
        .arg(format!("https://127.0.0.1:{port}/v1/auth"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text.rsplit("status=").next().unwrap_or_default().to_owned();
    let code = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-keyport-code: ")
                .map(|c| c.trim().to_uppercase())
        })
        .unwrap_or_default();
    (status, code)
}

/// The shipped TLS example (`examples/nginx/keyport-cluster.conf`) with two instances on one
/// PostgreSQL database: HTTPS reaches both (a key limited to one request an hour gets one per
/// instance without Redis), the client cannot choose its address, and when one instance stops,
/// requests are retried on the other instead of failing.
#[tokio::test]
async fn postgres_nginx_terminates_tls_for_two_instances_and_retries_past_a_stopped_one() {
    let pg = domain::testing::TestDb::postgres_empty()
        .await
        .expect("KEYPORT_TEST_POSTGRES_URL must be set for PostgreSQL tests");
    let url = pg.url.clone();
    let config = |dir: &std::path::Path| server::Config {
        database_url: Some(url.clone()),
        ..server::Config::for_data_dir(dir)
    };
    let dir_a = tempfile::tempdir().unwrap();
    let a = TestApp::spawn_with(config(dir_a.path()), dir_a, Some(pg)).await;
    let (stop_b, stopped) = tokio::sync::oneshot::channel::<()>();
    let dir_b = tempfile::tempdir().unwrap();
    let b = TestApp::spawn_until(config(dir_b.path()), dir_b, None, async {
        let _ = stopped.await;
    })
    .await;
    let w = world(&a).await;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args([
            "-keyout",
            &format!("{d}/privkey.pem"),
            "-out",
            &format!("{d}/fullchain.pem"),
        ])
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{made:?}");
    let (port, plain_port) = (free_port().await, free_port().await);
    let example = include_str!("../../../examples/nginx/keyport-cluster.conf");
    let host = |app: &TestApp| app.address.trim_start_matches("http://").to_owned();
    let site = example
        .replace("server 127.0.0.1:3001 ", &format!("server {} ", host(&a)))
        .replace("server 127.0.0.1:3002 ", &format!("server {} ", host(&b)))
        .replace(
            "    server 127.0.0.1:3003 max_fails=1 fail_timeout=5s;\n",
            "",
        )
        .replace(
            "listen 443 ssl http2;",
            &format!("listen 127.0.0.1:{port} ssl http2;"),
        )
        .replace("listen 80;", &format!("listen 127.0.0.1:{plain_port};"))
        .replace("/etc/ssl/keyport", &d);
    for gone in [
        "3001",
        "3002",
        "3003",
        "listen 443 ssl http2;",
        "listen 80;",
        "/etc/ssl",
    ] {
        assert!(!site.contains(gone), "{gone} was replaced in the example");
    }
    let nginx = run_nginx(&site, port, &dir).await;

    // Allowed only from 127.0.0.1: the client's own X-Forwarded-For does not count.
    let (local_only, _) = key(
        &a,
        &w.dev,
        NewKey {
            ip_allowlist: vec!["127.0.0.1/32".into()],
            ..orders_key()
        },
    )
    .await;
    assert_eq!(
        curl_auth(port, &local_only).await,
        ("200".into(), String::new())
    );
    // One request an hour, per instance without Redis: two pass (one on each), then 429.
    let (hourly, _) = key(&a, &w.dev, limited(Some((1, 3600)), None)).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(curl_auth(port, &hourly).await.0);
    }
    assert_eq!(
        codes.iter().filter(|c| *c == "200").count(),
        2,
        "both instances answered: {codes:?}"
    );

    // B stops (its listener closes): every request is still answered, by A.
    let b_address = host(&b);
    stop_b.send(()).unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&b_address).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(&b_address).await.is_err(),
        "B stopped"
    );
    for i in 0..6 {
        let (status, _) = curl_auth(port, &local_only).await;
        assert_eq!(status, "200", "request {i} after B stopped");
    }
    drop(nginx);
    drop(b);
    a.cleanup().await;
}
