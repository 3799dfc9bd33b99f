//! The happy paths (200 and 201): the caller, the OpenAPI document, the catalog, and a key's
//! life from creation to revocation, with the audit log.
use super::*;

async fn me_describes_the_caller(app: &TestApp) {
    let w = world(app).await;
    let me = success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
    let plan = me["plan"].clone();
    assert_eq!(
        me,
        json!({ "id": w.ada.id, "email": w.ada.email, "role": "developer", "plan": plan })
    );
    // Ada is on the default plan, and sees its limits.
    assert_eq!(plan["is_default"], true, "{plan}");
    assert_eq!(plan["name"], "Free");
    assert_eq!(plan["rate_limit"], json!({ "limit": 10, "period_s": 1 }));
    assert_eq!(w.ada.email, "ada@example.com");
    let me = success(get_as(app, &w.admin.token.bearer, "/v1/me").await, 200).await;
    assert_eq!(me["id"], w.admin.id.as_str());
    assert_eq!(me["role"], "admin");
}

async fn the_openapi_document_describes_the_api(app: &TestApp) {
    // The documentation needs no key.
    let response = app.get("/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi: {version}");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/v1/me",
        "/v1/apis",
        "/v1/apis/{slug}",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/keys/{id}/rotate",
        "/v1/keys/{id}/revoke",
        "/v1/audit",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{}",
        doc["components"]
    );
}

async fn admins_register_apis_and_everyone_reads_the_catalog(app: &TestApp) {
    let w = world(app).await;
    let billing = json!({
        "slug": "billing",
        "name": "Billing",
        "scopes": [{ "name": "invoices:read" }],
    });
    let created = success(
        post_as(app, &w.admin.token.bearer, "/v1/apis", &billing).await,
        201,
    )
    .await;
    assert_eq!(created["slug"], "billing");
    assert_eq!(created["built_in"], false);
    assert_eq!(created["scopes"][0]["name"], "invoices:read");

    let ada = &w.ada.token.bearer;
    let apis = success(get_as(app, ada, "/v1/apis").await, 200).await;
    let slugs = strs(apis["apis"].as_array().expect("apis"), "slug");
    for slug in ["keyport", "orders", "billing"] {
        assert!(slugs.contains(&slug), "{slugs:?}");
    }
    let orders = success(get_as(app, ada, "/v1/apis/orders").await, 200).await;
    assert_eq!(orders["name"], "Orders");
    assert_eq!(orders["built_in"], false);
    assert_eq!(
        strs(orders["scopes"].as_array().expect("scopes"), "name"),
        ["orders:read", "orders:write"]
    );
    assert_eq!(orders["versions"][0]["name"], "v1");
    assert_eq!(orders["versions"][0]["status"], "active");
    let keyport = success(get_as(app, ada, "/v1/apis/keyport").await, 200).await;
    assert_eq!(keyport["built_in"], true);
    assert_eq!(
        strs(keyport["scopes"].as_array().expect("scopes"), "name"),
        [
            "keys:read",
            "keys:write",
            "usage:read",
            "audit:read",
            "admin",
            "verify",
            "webhooks:read",
            "webhooks:write"
        ]
    );
    not_found(get_as(app, ada, "/v1/apis/shipping").await).await;
}

async fn developers_create_keys_and_see_the_plaintext_once(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let body = json!({
        "name": "ci",
        "api": "orders",
        "scopes": ["orders:write", "orders:read"],
        "expires_at": in_days(30),
        "ip_allowlist": ["203.0.113.7", "2001:db8::/32"],
    });
    let response = post_as(app, ada, "/v1/keys", &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    let plaintext = created["key"].as_str().expect("the plaintext key");
    assert!(plaintext.starts_with("kp_"), "{plaintext}");
    assert_eq!(plaintext.len(), 49);
    assert_eq!(created["start"], &plaintext[..9]);
    assert_eq!(created["name"], "ci");
    assert_eq!(created["api"], "orders");
    assert_eq!(created["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(created["owner_id"], w.ada.id.as_str());
    assert_eq!(
        created["ip_allowlist"],
        json!(["203.0.113.7", "2001:db8::/32"])
    );
    assert_eq!(created["status"], "active");
    assert_eq!(created["enabled"], true);
    assert!(
        created["ratelimit"].is_null() && created["quota"].is_null(),
        "{created}"
    );
    assert!(created.get("replaces").is_none(), "{created}");
    assert_no_hash(&created, plaintext);

    // Afterwards the key is shown without its plaintext.
    let key_id = id(&created);
    let fetched = success(get_as(app, ada, &format!("/v1/keys/{key_id}")).await, 200).await;
    assert!(fetched.get("key").is_none(), "{fetched}");
    assert_eq!(fetched["start"], created["start"]);
    assert_eq!(fetched["status"], "active");
    assert_no_hash(&fetched, plaintext);
    let listed = key_list(app, ada, "/v1/keys").await;
    assert!(strs(&listed, "id").contains(&key_id.as_str()));
    for key in &listed {
        assert!(key.get("key").is_none(), "{key}");
        assert_no_hash(key, plaintext);
    }
}

async fn keys_are_listed_newest_first_in_pages(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    for name in ["first", "second", "third"] {
        create_orders_key(app, ada, name).await;
    }
    create_orders_key(app, &w.bob.token.bearer, "bob's").await;

    let first = success(get_as(app, ada, "/v1/keys?limit=2").await, 200).await;
    let keys = first["keys"].as_array().expect("keys");
    assert_eq!(strs(keys, "name"), ["third", "second"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = success(
        get_as(app, ada, &format!("/v1/keys?limit=2&cursor={cursor}")).await,
        200,
    )
    .await;
    let keys = second["keys"].as_array().expect("keys");
    assert_eq!(strs(keys, "name"), ["first", "management"]);
    assert!(second["next_cursor"].is_null(), "{second}");

    // Only Ada's own keys, filtered on request.
    let all = key_list(app, ada, "/v1/keys").await;
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|k| k["owner_id"] == w.ada.id.as_str()));
    let orders = key_list(app, ada, "/v1/keys?api=orders").await;
    assert_eq!(strs(&orders, "name"), ["third", "second", "first"]);
    assert_eq!(key_list(app, ada, "/v1/keys?status=active").await.len(), 4);
    assert!(
        key_list(app, ada, "/v1/keys?status=revoked")
            .await
            .is_empty()
    );
}

async fn keys_are_renamed_rescoped_restricted_and_disabled(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let change = json!({
        "name": "laptop 2",
        "scopes": ["orders:read", "orders:write"],
        "ip_allowlist": ["203.0.113.7", "10.1.2.3/8"],
        "expires_at": in_days(60),
    });
    let patched = success(patch_as(app, ada, &path, &change).await, 200).await;
    assert_eq!(patched["id"], key["id"]);
    assert_eq!(patched["start"], key["start"]);
    assert_eq!(patched["name"], "laptop 2");
    assert_eq!(patched["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(
        patched["ip_allowlist"],
        json!(["203.0.113.7", "10.0.0.0/8"])
    );
    assert_ne!(patched["expires_at"], key["expires_at"]);
    assert_eq!(patched["status"], "active");

    let disabled = success(
        patch_as(app, ada, &path, &json!({ "enabled": false })).await,
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["enabled"], false);
    let fetched = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(fetched["status"], "disabled");
    assert_eq!(fetched["name"], "laptop 2");

    // Enabled again, with the allowlist cleared.
    let enabled = success(
        patch_as(
            app,
            ada,
            &path,
            &json!({ "enabled": true, "ip_allowlist": [] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(enabled["ip_allowlist"], json!([]));
}

async fn rotation_keeps_the_old_key_working_for_the_grace_period(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let old = create_orders_key(app, ada, "deploy").await;
    let old_id = id(&old);
    let now = Utc::now();
    let response = post_as(
        app,
        ada,
        &format!("/v1/keys/{old_id}/rotate"),
        &json!({ "grace_period_s": 3600 }),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let new: Value = response.json().await.unwrap();
    assert_eq!(new["replaces"], old_id.as_str());
    assert_ne!(id(&new), old_id);
    let plaintext = new["key"].as_str().expect("the new plaintext");
    assert!(
        plaintext.starts_with("kp_") && plaintext.len() == 49,
        "{plaintext}"
    );
    assert_ne!(new["key"], old["key"]);
    assert_eq!(new["start"], &plaintext[..9]);
    assert_eq!(new["name"], "deploy");
    assert_eq!(new["scopes"], old["scopes"]);
    assert_eq!(new["status"], "active");
    assert_no_hash(&new, plaintext);

    let previous = success(get_as(app, ada, &format!("/v1/keys/{old_id}")).await, 200).await;
    assert_eq!(previous["status"], "rotating");
    let until: DateTime<Utc> = previous["expires_at"]
        .as_str()
        .expect("an expiry")
        .parse()
        .unwrap();
    assert!(
        until > now + Duration::minutes(59) && until < now + Duration::minutes(61),
        "{until}"
    );

    // Ada's own management key, rotated with a grace period: both keys work until it ends.
    let rotated = success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{}/rotate", w.ada.token.id),
            &json!({ "grace_period_s": 3600 }),
        )
        .await,
        201,
    )
    .await;
    let replacement = rotated["key"].as_str().expect("the new plaintext");
    for token in [ada.as_str(), replacement] {
        let me = success(get_as(app, token, "/v1/me").await, 200).await;
        assert_eq!(me["id"], w.ada.id.as_str());
    }
}

async fn revoked_keys_show_as_revoked(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let created = create_orders_key(app, ada, "old laptop").await;
    assert_eq!(
        created["allowed_actions"],
        json!(["edit", "toggle", "rotate", "revoke"])
    );
    let key_id = id(&created);
    let revoked = success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{key_id}/revoke"),
            &json!({ "reason": "leaked in a log" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revoked["id"], key_id.as_str());
    assert_eq!(revoked["status"], "revoked");
    // Nothing more can be done to it, as the 409s below confirm.
    assert_eq!(revoked["allowed_actions"], json!([]));
    for (path, body) in [
        (format!("/v1/keys/{key_id}/rotate"), json!({})),
        (format!("/v1/keys/{key_id}/revoke"), json!({})),
    ] {
        conflict(post_as(app, ada, &path, &body).await).await;
    }
    conflict(
        patch_as(
            app,
            ada,
            &format!("/v1/keys/{key_id}"),
            &json!({ "name": "x" }),
        )
        .await,
    )
    .await;
    let fetched = success(get_as(app, ada, &format!("/v1/keys/{key_id}")).await, 200).await;
    assert_eq!(fetched["status"], "revoked");
    let listed = key_list(app, ada, "/v1/keys?status=revoked").await;
    assert_eq!(strs(&listed, "id"), [key_id.as_str()]);
    // The reason is kept in the audit log.
    let events = audit_events(app, ada, "/v1/audit?action=key.revoke").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target"], key_id.as_str());
    assert_eq!(events[0]["details"]["reason"], "leaked in a log");
}

async fn the_audit_log_shows_developers_their_own_events(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "deploy").await;
    let key_id = id(&key);
    let rotated = success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{key_id}/rotate"),
            &json!({ "grace_period_s": 3600 }),
        )
        .await,
        201,
    )
    .await;
    let new_id = id(&rotated);
    success(
        post_as(
            app,
            ada,
            &format!("/v1/keys/{new_id}/revoke"),
            &json!({ "reason": "project ended" }),
        )
        .await,
        200,
    )
    .await;
    let bob = &w.bob.token.bearer;
    let bobs = id(&create_orders_key(app, bob, "bob's").await);
    success(
        post_as(app, bob, &format!("/v1/keys/{bobs}/revoke"), &json!({})).await,
        200,
    )
    .await;

    // Newest first: Ada's key events, the first being her management key's creation.
    let events = audit_events(app, ada, "/v1/audit?action=key.").await;
    assert_eq!(
        strs(&events, "action"),
        ["key.revoke", "key.rotate", "key.create", "key.create"]
    );
    assert_eq!(
        strs(&events, "target"),
        [
            new_id.as_str(),
            key_id.as_str(),
            key_id.as_str(),
            w.ada.token.id.as_str()
        ]
    );
    assert!(
        events.iter().all(|e| e["actor_id"] == w.ada.id.as_str()),
        "{events:?}"
    );
    assert_eq!(events[0]["details"]["reason"], "project ended");
    assert_eq!(events[1]["details"]["new_key_id"], new_id.as_str());

    // Nothing of Bob's, whatever the filter, and no plaintext key anywhere.
    let all = audit_events(app, ada, "/v1/audit?limit=200").await;
    assert!(
        all.iter().all(|e| e["actor_id"] != w.bob.id.as_str()
            && e["target"] != w.bob.id.as_str()
            && e["target"] != bobs.as_str()),
        "{all:?}"
    );
    let by_bob = audit_events(app, ada, &format!("/v1/audit?actor_id={}", w.bob.id)).await;
    assert!(by_bob.is_empty(), "{by_bob:?}");
    let text = serde_json::to_string(&all).unwrap();
    for plaintext in [&key["key"], &rotated["key"]] {
        let plaintext = plaintext.as_str().expect("a plaintext key");
        assert!(
            !text.contains(plaintext),
            "a plaintext key in the audit log"
        );
    }

    // Bob's log has his events and none of Ada's.
    let bobs_events = audit_events(app, bob, "/v1/audit?action=key.").await;
    assert_eq!(
        strs(&bobs_events, "action"),
        ["key.revoke", "key.create", "key.create"]
    );
    assert!(
        bobs_events
            .iter()
            .all(|e| e["actor_id"] == w.bob.id.as_str()),
        "{bobs_events:?}"
    );
}

async fn an_admin_key_sees_every_key_and_filters_by_owner(app: &TestApp) {
    let w = world(app).await;
    let admin = &w.admin.token.bearer;
    let adas = id(&create_orders_key(app, &w.ada.token.bearer, "ada's").await);
    let bobs = id(&create_orders_key(app, &w.bob.token.bearer, "bob's").await);

    let all = key_list(app, admin, "/v1/keys").await;
    let ids = strs(&all, "id");
    for expected in [
        &adas,
        &bobs,
        &w.ada.token.id,
        &w.bob.token.id,
        &w.admin.token.id,
    ] {
        assert!(
            ids.contains(&expected.as_str()),
            "{expected} not in {ids:?}"
        );
    }
    let only_ada = key_list(app, admin, &format!("/v1/keys?owner_id={}", w.ada.id)).await;
    assert_eq!(
        strs(&only_ada, "id"),
        [adas.as_str(), w.ada.token.id.as_str()]
    );
    let fetched = success(get_as(app, admin, &format!("/v1/keys/{bobs}")).await, 200).await;
    assert_eq!(fetched["owner_id"], w.bob.id.as_str());

    // Admins create keys for others, beyond the plan's limits, and revoke anyone's.
    let for_bob = json!({
        "name": "for bob",
        "api": "orders",
        "scopes": ["orders:read"],
        "expires_at": null,
        "ratelimit": { "limit": 100, "period_s": 1 },
        "owner_id": w.bob.id,
    });
    let created = success(post_as(app, admin, "/v1/keys", &for_bob).await, 201).await;
    let created_id = id(&created);
    assert_eq!(created["owner_id"], w.bob.id.as_str());
    assert!(created["expires_at"].is_null(), "{created}");
    assert_eq!(created["ratelimit"], json!({ "limit": 100, "period_s": 1 }));
    let revoked = success(
        post_as(app, admin, &format!("/v1/keys/{bobs}/revoke"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(revoked["status"], "revoked");

    // And they see everyone's events.
    let events = audit_events(app, admin, "/v1/audit?action=key.create").await;
    let targets = strs(&events, "target");
    for expected in [&adas, &bobs, &created_id] {
        assert!(
            targets.contains(&expected.as_str()),
            "{expected} not in {targets:?}"
        );
    }
}

on_both_databases!(
    me_describes_the_caller,
    the_openapi_document_describes_the_api,
    admins_register_apis_and_everyone_reads_the_catalog,
    developers_create_keys_and_see_the_plaintext_once,
    keys_are_listed_newest_first_in_pages,
    keys_are_renamed_rescoped_restricted_and_disabled,
    rotation_keeps_the_old_key_working_for_the_grace_period,
    revoked_keys_show_as_revoked,
    the_audit_log_shows_developers_their_own_events,
    an_admin_key_sees_every_key_and_filters_by_owner,
);
