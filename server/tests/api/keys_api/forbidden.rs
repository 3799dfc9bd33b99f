//! 403: the key lacks a scope, or the caller a role (broken function level authorization).
use super::*;

async fn keys_lacking_a_scope_are_forbidden(app: &TestApp) {
    let w = world(app).await;
    let key = create_orders_key(app, &w.ada.token.bearer, "ci").await;
    let path = format!("/v1/keys/{}", id(&key));

    let read_only = keyport_key(app, &w.ada.actor, "read only", &["keys:read"]).await;
    let reader = read_only.bearer.as_str();
    success(get_as(app, reader, "/v1/keys").await, 200).await;
    success(get_as(app, reader, &path).await, 200).await;
    let refused = forbidden(post_as(app, reader, "/v1/keys", &orders_key("more")).await).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("keys:write"), "{refused}");
    forbidden(patch_as(app, reader, &path, &json!({ "name": "renamed" })).await).await;
    forbidden(post_as(app, reader, &format!("{path}/rotate"), &json!({})).await).await;
    forbidden(post_as(app, reader, &format!("{path}/revoke"), &json!({})).await).await;
    let refused = forbidden(get_as(app, reader, "/v1/audit").await).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("audit:read"), "{refused}");

    let audit_only = keyport_key(app, &w.ada.actor, "auditor", &["audit:read"]).await;
    let auditor = audit_only.bearer.as_str();
    success(get_as(app, auditor, "/v1/me").await, 200).await;
    success(get_as(app, auditor, "/v1/audit").await, 200).await;
    forbidden(get_as(app, auditor, "/v1/keys").await).await;
    forbidden(get_as(app, auditor, &path).await).await;

    // Nothing changed, nothing was created.
    let after = success(get_as(app, &w.ada.token.bearer, &path).await, 200).await;
    assert_eq!(after["name"], "ci");
    assert_eq!(after["status"], "active");
    assert_eq!(
        key_list(app, &w.ada.token.bearer, "/v1/keys").await.len(),
        4
    );
}

async fn developers_cannot_call_admin_endpoints(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let billing = json!({
        "slug": "billing",
        "name": "Billing",
        "scopes": [{ "name": "invoices:read" }],
    });
    forbidden(post_as(app, ada, "/v1/apis", &billing).await).await;
    forbidden(patch_as(app, ada, "/v1/apis/orders", &json!({ "name": "Mine" })).await).await;
    forbidden(patch_as(app, ada, "/v1/apis/keyport", &json!({ "name": "Mine" })).await).await;

    // The catalog is unchanged, and reading it is for everyone.
    not_found(get_as(app, ada, "/v1/apis/billing").await).await;
    let orders = success(get_as(app, ada, "/v1/apis/orders").await, 200).await;
    assert_eq!(orders["name"], "Orders");
    success(get_as(app, ada, "/v1/apis").await, 200).await;
}

async fn an_admins_key_without_the_admin_scope_acts_as_a_developer(app: &TestApp) {
    let w = world(app).await;
    let adas = id(&create_orders_key(app, &w.ada.token.bearer, "ada's").await);
    let plain = keyport_key(app, &w.admin.actor, "no admin scope", &DEVELOPER_SCOPES).await;
    let token = plain.bearer.as_str();

    // It is the admin's key...
    let me = success(get_as(app, token, "/v1/me").await, 200).await;
    assert_eq!(me["id"], w.admin.id.as_str());
    assert_eq!(me["role"], "admin");

    // ...without admin powers: no catalog changes,
    let billing = with(orders_api(), "slug", json!("billing"));
    forbidden(post_as(app, token, "/v1/apis", &billing).await).await;
    forbidden(patch_as(app, token, "/v1/apis/orders", &json!({ "name": "Mine" })).await).await;

    // only its owner's keys, whatever the filter,
    for path in [
        "/v1/keys".to_owned(),
        format!("/v1/keys?owner_id={}", w.ada.id),
    ] {
        let listed = key_list(app, token, &path).await;
        assert!(
            !listed.is_empty() && listed.iter().all(|k| k["owner_id"] == w.admin.id.as_str()),
            "{path}: {listed:?}"
        );
    }
    let path = format!("/v1/keys/{adas}");
    not_found(get_as(app, token, &path).await).await;
    not_found(patch_as(app, token, &path, &json!({ "enabled": false })).await).await;
    not_found(post_as(app, token, &format!("{path}/revoke"), &json!({})).await).await;

    // no keys for others, no admin scope, and the plan's limits,
    let for_ada = with(orders_key("for ada"), "owner_id", json!(w.ada.id));
    forbidden(post_as(app, token, "/v1/keys", &for_ada).await).await;
    let grant = json!({
        "name": "ops",
        "api": "keyport",
        "scopes": ["admin"],
        "expires_at": in_days(1),
    });
    forbidden(post_as(app, token, "/v1/keys", &grant).await).await;
    let forever = with(orders_key("forever"), "expires_at", Value::Null);
    invalid(
        post_as(app, token, "/v1/keys", &forever).await,
        "expires_at",
    )
    .await;
    let fast = with(
        orders_key("fast"),
        "ratelimit",
        json!({ "limit": 100, "period_s": 1 }),
    );
    invalid(post_as(app, token, "/v1/keys", &fast).await, "ratelimit").await;

    // and only the events that involve the admin, among them its refused attempts on Ada's key.
    let events = audit_events(app, token, "/v1/audit?limit=200").await;
    assert!(
        events.iter().all(|e| e["actor_id"] != w.ada.id.as_str()
            && (e["target"] != adas.as_str() || e["action"] == "authz.denied")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["target"] == adas.as_str() && e["action"] == "authz.denied"),
        "{events:?}"
    );

    // Ada's key is untouched; the admin's key with the admin scope can see it.
    let fetched = success(get_as(app, &w.admin.token.bearer, &path).await, 200).await;
    assert_eq!(fetched["status"], "active");
}

async fn developers_cannot_create_keys_for_others_or_grant_admin(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let for_bob = with(orders_key("for bob"), "owner_id", json!(w.bob.id));
    forbidden(post_as(app, ada, "/v1/keys", &for_bob).await).await;
    let bobs = key_list(
        app,
        &w.admin.token.bearer,
        &format!("/v1/keys?owner_id={}", w.bob.id),
    )
    .await;
    assert_eq!(strs(&bobs, "id"), [w.bob.token.id.as_str()]);

    for scopes in [json!(["admin"]), json!(["keys:read", "admin"])] {
        let grant = json!({
            "name": "ops",
            "api": "keyport",
            "scopes": scopes,
            "expires_at": in_days(1),
        });
        forbidden(post_as(app, ada, "/v1/keys", &grant).await).await;
    }

    // Nor by widening a key she has, not even her own management key.
    let path = format!("/v1/keys/{}", w.ada.token.id);
    let before = success(get_as(app, ada, &path).await, 200).await;
    let widen =
        json!({ "scopes": ["keys:read", "keys:write", "audit:read", "usage:read", "admin"] });
    forbidden(patch_as(app, ada, &path, &widen).await).await;
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after["scopes"], before["scopes"]);
    assert_eq!(
        after["scopes"],
        json!(["audit:read", "keys:read", "keys:write", "usage:read"])
    );

    // Naming herself as the owner is fine.
    let mine = with(orders_key("mine"), "owner_id", json!(w.ada.id));
    let created = success(post_as(app, ada, "/v1/keys", &mine).await, 201).await;
    assert_eq!(created["owner_id"], w.ada.id.as_str());
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 2);
}

/// No privilege minting: a management key grants on the management API only the scopes it
/// holds, cannot widen itself, and cannot free itself from its IP allowlist. Each refusal is a
/// 403 and an `authz.denied` audit event.
async fn management_keys_cannot_mint_privileges(app: &TestApp) {
    let w = world(app).await;
    let narrow = keyport_key(app, &w.ada.actor, "narrow", &["keys:read", "keys:write"]).await;
    let token = narrow.bearer.as_str();
    let grant = |name: &str, scopes: Value| json!({ "name": name, "api": "keyport", "scopes": scopes, "expires_at": in_days(1) });
    // A new management key with a scope this key lacks.
    let refused = forbidden(
        post_as(
            app,
            token,
            "/v1/keys",
            &grant("wider", json!(["keys:read", "audit:read"])),
        )
        .await,
    )
    .await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("audit:read"), "{refused}");
    // What it holds itself it may pass on; keys of other APIs are not concerned.
    let child = success(
        post_as(
            app,
            token,
            "/v1/keys",
            &grant("child", json!(["keys:read"])),
        )
        .await,
        201,
    )
    .await;
    success(
        post_as(app, token, "/v1/keys", &orders_key("orders")).await,
        201,
    )
    .await;
    // Widening another management key, or itself.
    let child_path = format!("/v1/keys/{}", id(&child));
    forbidden(
        patch_as(
            app,
            token,
            &child_path,
            &json!({ "scopes": ["usage:read"] }),
        )
        .await,
    )
    .await;
    let own_path = format!("/v1/keys/{}", narrow.id);
    let widen = json!({ "scopes": ["keys:read", "keys:write", "usage:read"] });
    forbidden(patch_as(app, token, &own_path, &widen).await).await;

    // A key tied to a network cannot untie itself (the tests connect from 127.0.0.1).
    let tied = app
        .state
        .keys
        .create(
            &w.ada.actor,
            NewKey {
                name: "tied".into(),
                api: "keyport".into(),
                scopes: DEVELOPER_SCOPES.iter().map(|s| s.to_string()).collect(),
                ip_allowlist: vec!["127.0.0.0/8".into()],
                expires_at: Some(Utc::now() + Duration::days(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tied_token = tied.plaintext.expose();
    let tied_path = format!("/v1/keys/{}", tied.key.id);
    for list in [
        json!([]),
        json!(["0.0.0.0/0"]),
        json!(["127.0.0.0/8", "10.0.0.0/8"]),
    ] {
        forbidden(
            patch_as(
                app,
                tied_token,
                &tied_path,
                &json!({ "ip_allowlist": list }),
            )
            .await,
        )
        .await;
    }
    let after = success(get_as(app, tied_token, &tied_path).await, 200).await;
    assert_eq!(after["ip_allowlist"], json!(["127.0.0.0/8"]));
    // Renaming itself is fine; another key of hers may change its allowlist.
    success(
        patch_as(
            app,
            tied_token,
            &tied_path,
            &json!({ "name": "tied, renamed" }),
        )
        .await,
        200,
    )
    .await;
    let changed = success(
        patch_as(
            app,
            &w.ada.token.bearer,
            &tied_path,
            &json!({ "ip_allowlist": [] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["ip_allowlist"], json!([]));
    let after = success(get_as(app, token, &own_path).await, 200).await;
    assert_eq!(after["scopes"], json!(["keys:read", "keys:write"]));

    // Every refusal is in the audit log, with the key that tried.
    let denied = audit_events(
        app,
        &w.admin.token.bearer,
        "/v1/audit?action=authz.denied&limit=100",
    )
    .await;
    assert_eq!(denied.len(), 6, "{denied:?}");
    assert!(
        denied.iter().all(|e| e["actor_id"] == w.ada.id.as_str()),
        "{denied:?}"
    );
}

on_both_databases!(
    keys_lacking_a_scope_are_forbidden,
    developers_cannot_call_admin_endpoints,
    an_admins_key_without_the_admin_scope_acts_as_a_developer,
    developers_cannot_create_keys_for_others_or_grant_admin,
    management_keys_cannot_mint_privileges,
);
