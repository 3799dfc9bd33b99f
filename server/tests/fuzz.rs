//! Generated input against every parser that sees untrusted input, 100,000 cases each
//! (`KEYPORT_FUZZ_CASES` overrides): the key format, IP allowlist entries, form bodies, and the
//! JSON bodies of verification and of the management API, sent through the real router
//! in-process. The rule: no panic, and no 5xx answer for anything a client can send.
use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use domain::keys::{PlainKey, parse_allowlist_entry};
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Value, json};
use server::{Config, Server, portal::forms::Fields};
use tower::ServiceExt;

fn cases() -> u32 {
    std::env::var("KEYPORT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Text that looks like a key, nearly a key, or nothing like one.
fn key_text() -> impl Strategy<Value = String> {
    let valid = Just(()).prop_map(|_| PlainKey::generate().expose().to_owned());
    prop_oneof![
        "\\PC{0,80}",
        "kp_[A-Za-z0-9]{0,60}",
        "kp_[A-Za-z0-9_\\-é]{40,50}",
        (valid, 0usize..49, any::<char>()).prop_map(|(key, at, c)| {
            let mut chars: Vec<char> = key.chars().collect();
            chars[at] = c;
            chars.into_iter().collect()
        }),
    ]
}

#[test]
fn the_key_parser_never_panics_and_accepts_only_checksummed_keys() {
    runner()
        .run(&key_text(), |text| {
            if let Ok(key) = PlainKey::parse(&text) {
                prop_assert_eq!(key.expose(), text.as_str());
                prop_assert_eq!(text.len(), 49);
                prop_assert!(text.starts_with("kp_"));
            }
            Ok(())
        })
        .unwrap();
}

/// Things people type into an allowlist.
fn allowlist_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        "[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}(/[0-9]{1,3})?",
        "[0-9a-fA-F:]{0,45}(/[0-9]{1,3})?",
        " *[0-9./: a-z]{0,40} *",
    ]
}

#[test]
fn allowlist_entries_never_panic_and_accepted_ones_round_trip() {
    runner()
        .run(&allowlist_text(), |text| {
            if let Some(net) = parse_allowlist_entry(&text) {
                let again = parse_allowlist_entry(&net.to_string());
                prop_assert_eq!(again, Some(net));
            }
            Ok(())
        })
        .unwrap();
}

/// Form bodies: URL-encoded pairs with the portal's field names, odd encodings and raw bytes.
fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("name".to_owned()),
        Just("scopes".to_owned()),
        Just("ratelimit".to_owned()),
        Just("quota".to_owned()),
        Just("expires".to_owned()),
        Just("ip_allowlist".to_owned()),
        "[a-z_%]{0,12}",
    ];
    let pairs = prop::collection::vec((name, "\\PC{0,30}"), 0..8).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    });
    prop_oneof![pairs, prop::collection::vec(any::<u8>(), 0..200)]
}

#[test]
fn form_bodies_never_panic_the_field_parser() {
    runner()
        .run(&form_body(), |body| {
            let fields = Fields::parse(&body);
            let mut errors = domain::service::FieldErrors::default();
            for name in [
                "name",
                "scopes",
                "ratelimit",
                "quota",
                "expires",
                "ip_allowlist",
            ] {
                let _ = fields.get(name);
                let _ = fields.all(name);
                let _ = fields.number::<u32>(name, &mut errors);
                let _ = fields.number::<u64>(name, &mut errors);
                let _ = fields.number::<i64>(name, &mut errors);
            }
            Ok(())
        })
        .unwrap();
}

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the fields an endpoint reads, each of any type, plus extra ones.
fn shaped(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let values = prop::collection::vec(
        prop_oneof![3 => any_json(), 1 => Just(Value::Null)],
        fields.len(),
    );
    (
        values,
        any_json(),
        prop::collection::vec(any::<bool>(), fields.len()),
    )
        .prop_map(move |(values, extra, present)| {
            let mut object = serde_json::Map::new();
            for ((field, value), keep) in fields.iter().zip(values).zip(present) {
                if keep {
                    object.insert((*field).to_owned(), value);
                }
            }
            object.insert("extra".into(), extra);
            Value::Object(object)
        })
}

/// What a client can put in a body: a shaped object, any JSON, or bytes that are not JSON.
fn body(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => shaped(fields).prop_map(|v| v.to_string().into_bytes()),
        2 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..120),
    ]
}

struct App {
    router: Router,
    runtime: tokio::runtime::Runtime,
    token: String,
    key_id: String,
    /// Another key of the admin's, for the fuzzer to PATCH.
    target_id: String,
    _data_dir: tempfile::TempDir,
}

/// The real app on a fresh SQLite file, its router called in-process, and an admin's
/// management key on a plan without limits (so the fuzzer is not simply rate-limited).
fn app() -> App {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config::for_data_dir(data_dir.path());
    let (router, token, key_id, target_id) = runtime.block_on(async {
        let server = Server::bind(&config).await.unwrap();
        let state = server.state.clone();
        let admin = state
            .accounts
            .create_admin("root@example.com", "glacier lantern pepper")
            .await
            .unwrap();
        let actor = domain::service::Actor::new(admin.id.clone(), true, Default::default());
        let plan = state
            .keys
            .catalog()
            .create_plan(
                &actor,
                domain::catalog::PlanInput {
                    name: "Unlimited".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        state
            .keys
            .catalog()
            .assign_plan(&actor, &admin.id, Some(&plan.id))
            .await
            .unwrap();
        let key = |name: &str| domain::keys::NewKey {
            name: name.into(),
            api: "keyport".into(),
            scopes: vec!["admin".into()],
            ..Default::default()
        };
        let created = state.keys.create(&actor, key("fuzzer")).await.unwrap();
        let target = state.keys.create(&actor, key("target")).await.unwrap();
        (
            server.router(),
            created.plaintext.expose().to_owned(),
            created.key.id,
            target.key.id,
        )
    });
    App {
        router,
        runtime,
        token,
        key_id,
        target_id,
        _data_dir: data_dir,
    }
}

impl App {
    fn send(&self, method: Method, path: &str, body: Vec<u8>) -> StatusCode {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        self.runtime
            .block_on(self.router.clone().oneshot(request))
            .unwrap()
            .status()
    }
}

const VERIFY_FIELDS: &[&str] = &["key", "api", "scopes", "ip", "version", "cost"];

#[test]
fn verify_bodies_never_get_a_server_error() {
    let app = app();
    let real_key = app.token.clone();
    let strategy = (body(VERIFY_FIELDS), any::<bool>()).prop_map(move |(body, with_key)| {
        // Half the objects carry a real key, so the checks after the key lookup run too.
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut o)) if with_key => {
                o.insert("key".into(), json!(real_key));
                Value::Object(o).to_string().into_bytes()
            }
            _ => body,
        }
    });
    runner()
        .run(&strategy, |body| {
            let status = app.send(Method::POST, "/v1/keys/verify", body);
            prop_assert!(!status.is_server_error(), "{status}");
            Ok(())
        })
        .unwrap();
}

const KEY_FIELDS: &[&str] = &[
    "name",
    "api",
    "scopes",
    "expires_at",
    "ip_allowlist",
    "ratelimit",
    "quota",
    "owner_id",
    "enabled",
];
const API_FIELDS: &[&str] = &["slug", "name", "description", "scopes", "versions"];

#[test]
fn management_api_bodies_never_get_a_server_error() {
    let app = app();
    let own_key = format!("/v1/keys/{}", app.key_id);
    let target = format!("/v1/keys/{}", app.target_id);
    let endpoints = prop_oneof![
        Just((Method::POST, "/v1/keys".to_owned(), KEY_FIELDS)),
        Just((Method::PATCH, target, KEY_FIELDS)),
        Just((Method::POST, "/v1/apis".to_owned(), API_FIELDS)),
        Just((Method::PATCH, "/v1/apis/keyport".to_owned(), API_FIELDS)),
    ];
    let strategy =
        endpoints.prop_flat_map(|(method, path, fields)| (Just(method), Just(path), body(fields)));
    runner()
        .run(&strategy, |(method, path, body)| {
            let status = app.send(method, &path, body);
            prop_assert!(!status.is_server_error(), "{status}");
            Ok(())
        })
        .unwrap();
    // The fuzzer's own key still works: nothing it sent disabled it by accident.
    assert_eq!(app.send(Method::GET, &own_key, Vec::new()), StatusCode::OK);
}
