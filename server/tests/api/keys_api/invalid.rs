//! 422 naming the field, and 400 for a body that is not JSON: refused input, including fields a
//! caller may not set (broken object property level authorization).
use super::*;

async fn invalid_new_keys_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let mut without_expiry = orders_key("x");
    without_expiry.as_object_mut().unwrap().remove("expires_at");
    let cases = [
        ("name", with(orders_key("x"), "name", json!(" "))),
        ("api", with(orders_key("x"), "api", json!("billing"))),
        (
            "scopes",
            with(orders_key("x"), "scopes", json!(["billing:read"])),
        ),
        ("scopes", with(orders_key("x"), "scopes", json!([]))),
        (
            "scopes",
            with(orders_key("x"), "scopes", json!("orders:read")),
        ),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", json!(in_days(400))),
        ),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", Value::Null),
        ),
        ("expires_at", without_expiry),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", json!(in_days(-1))),
        ),
        (
            "expires_at",
            with(orders_key("x"), "expires_at", json!("next tuesday")),
        ),
        (
            "ip_allowlist",
            with(orders_key("x"), "ip_allowlist", json!(["300.1.1.1"])),
        ),
        (
            "ip_allowlist",
            with(orders_key("x"), "ip_allowlist", json!(["10.0.0.0/33"])),
        ),
        (
            "ratelimit",
            with(
                orders_key("x"),
                "ratelimit",
                json!({ "limit": 0, "period_s": 1 }),
            ),
        ),
        (
            "quota",
            with(
                orders_key("x"),
                "quota",
                json!({ "limit": 10, "period": "week" }),
            ),
        ),
        ("owner", with(orders_key("x"), "owner", json!(w.bob.id))),
    ];
    for (field, body) in &cases {
        invalid(post_as(app, ada, "/v1/keys", body).await, field).await;
    }
    // Nothing was created: Ada has only her management key.
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 1);
}

async fn developers_cannot_raise_their_plans_limits(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let above = [
        ("ratelimit", json!({ "limit": 100, "period_s": 1 })),
        ("ratelimit", json!({ "limit": 11, "period_s": 1 })),
        ("ratelimit", json!({ "limit": 1000, "period_s": 60 })),
        ("quota", json!({ "limit": 10_001, "period": "day" })),
        // Compared as rates: a month's quota above the plan's daily one could go in a day.
        ("quota", json!({ "limit": 10_001, "period": "month" })),
        ("expires_at", json!(in_days(366))),
    ];
    for (field, value) in above {
        let body = with(orders_key("greedy"), field, value);
        invalid(post_as(app, ada, "/v1/keys", &body).await, field).await;
    }
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 1);

    // Lower limits, and the longest lifetime, are fine.
    let limited = json!({
        "name": "limited",
        "api": "orders",
        "scopes": ["orders:read"],
        "expires_at": in_days(365),
        "ratelimit": { "limit": 5, "period_s": 1 },
        "quota": { "limit": 100, "period": "day" },
    });
    let created = success(post_as(app, ada, "/v1/keys", &limited).await, 201).await;
    assert_eq!(created["ratelimit"], json!({ "limit": 5, "period_s": 1 }));
    assert_eq!(created["quota"], json!({ "limit": 100, "period": "day" }));
}

async fn patching_fields_other_than_the_allowed_ones_is_refused(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let before = success(get_as(app, ada, &path).await, 200).await;
    let smuggled = [
        ("owner", json!(w.bob.id)),
        ("owner_id", json!(w.bob.id)),
        ("api", json!("keyport")),
        ("ratelimit", json!({ "limit": 1000, "period_s": 1 })),
        ("quota", json!({ "limit": 1_000_000, "period": "day" })),
        ("hash", json!("0".repeat(64))),
        ("start", json!("kp_000000")),
        ("status", json!("active")),
        ("revoked_at", Value::Null),
        ("replaces", json!(w.ada.token.id)),
        ("created_at", json!(in_days(-100))),
        ("id", json!(UNKNOWN_KEY)),
    ];
    for (field, value) in smuggled {
        let mut alone = json!({});
        alone[field] = value.clone();
        invalid(patch_as(app, ada, &path, &alone).await, field).await;
        // Next to allowed changes, the whole request is refused.
        let mut mixed = json!({ "name": "renamed", "enabled": false });
        mixed[field] = value;
        invalid(patch_as(app, ada, &path, &mixed).await, field).await;
    }
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after, before);
}

async fn invalid_key_changes_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let before = success(get_as(app, ada, &path).await, 200).await;
    let cases = [
        ("name", json!({ "name": "" })),
        ("name", json!({ "name": "n".repeat(101) })),
        ("scopes", json!({ "scopes": [] })),
        ("scopes", json!({ "scopes": ["keys:read"] })),
        ("expires_at", json!({ "expires_at": null })),
        ("expires_at", json!({ "expires_at": in_days(400) })),
        ("ip_allowlist", json!({ "ip_allowlist": ["localhost"] })),
        ("enabled", json!({ "enabled": "no" })),
    ];
    for (field, body) in &cases {
        invalid(patch_as(app, ada, &path, body).await, field).await;
    }
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after, before);
}

async fn invalid_parameters_name_the_field(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let rotate = format!("{path}/rotate");
    let too_long = json!({ "grace_period_s": 40 * 86_400 });
    invalid(
        post_as(app, ada, &rotate, &too_long).await,
        "grace_period_s",
    )
    .await;
    let not_a_number = json!({ "grace_period_s": "soon" });
    invalid(post_as(app, ada, &rotate, &not_a_number).await, "body").await;
    invalid(
        post_as(app, ada, &rotate, &json!({ "grace": 60 })).await,
        "body",
    )
    .await;
    // JSON that is not an object (serde would read `[]` as a struct of optional fields).
    for not_an_object in [json!([]), json!([60]), json!("rotate"), json!(7)] {
        invalid(post_as(app, ada, &rotate, &not_an_object).await, "body").await;
        invalid(
            post_as(app, ada, &format!("{path}/revoke"), &not_an_object).await,
            "body",
        )
        .await;
    }
    let long_reason = json!({ "reason": "x".repeat(501) });
    invalid(
        post_as(app, ada, &format!("{path}/revoke"), &long_reason).await,
        "reason",
    )
    .await;
    for (query, field) in [
        ("/v1/keys?limit=0", "limit"),
        ("/v1/keys?limit=101", "limit"),
        // Of the wrong type: a JSON 422 naming the query, not the framework's plain-text 400.
        ("/v1/keys?limit=-1", "query"),
        ("/v1/keys?status=lost", "status"),
        ("/v1/audit?limit=201", "limit"),
        ("/v1/audit?cursor=abc", "cursor"),
        ("/v1/audit?from=yesterday", "query"),
    ] {
        invalid(get_as(app, ada, query).await, field).await;
    }
    // The key was neither rotated nor revoked.
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after["status"], "active");
}

async fn bodies_that_are_not_json_are_bad_requests(app: &TestApp) {
    let w = world(app).await;
    let ada = &w.ada.token.bearer;
    let key = create_orders_key(app, ada, "laptop").await;
    let path = format!("/v1/keys/{}", id(&key));
    let as_json = Some("application/json");
    let cases = [
        (Method::POST, "/v1/keys".to_owned(), as_json, "{\"name\": "),
        (
            Method::POST,
            "/v1/keys".to_owned(),
            as_json,
            "name=ci&api=orders",
        ),
        (Method::PATCH, path.clone(), as_json, "enabled=false"),
        (Method::POST, format!("{path}/rotate"), as_json, "{"),
        (
            Method::POST,
            format!("{path}/revoke"),
            as_json,
            "reason: leaked",
        ),
    ];
    for (method, target, content_type, body) in cases {
        bad_request(send_raw(app, method, ada, &target, content_type, body).await).await;
    }
    // JSON sent without saying so.
    let unlabelled = orders_key("ci").to_string();
    bad_request(send_raw(app, Method::POST, ada, "/v1/keys", None, unlabelled).await).await;

    // Nothing changed.
    let after = success(get_as(app, ada, &path).await, 200).await;
    assert_eq!(after["status"], "active");
    assert_eq!(key_list(app, ada, "/v1/keys").await.len(), 2);
}

on_both_databases!(
    invalid_new_keys_name_the_field,
    developers_cannot_raise_their_plans_limits,
    patching_fields_other_than_the_allowed_ones_is_refused,
    invalid_key_changes_name_the_field,
    invalid_parameters_name_the_field,
    bodies_that_are_not_json_are_bad_requests,
);
