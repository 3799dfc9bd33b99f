//! The admin parts of the REST API over real HTTP: plans (`/v1/plans`, `PUT /v1/users/{id}/plan`),
//! users (`/v1/users` and its actions) and key hygiene (`/v1/hygiene`). Each rule is tried from
//! the side that should lose: no key (401), a developer's key or an admin's key without the
//! `admin` scope (403, and nothing changes), another user's object (404), the admin's own account
//! (409), bad input (422 naming the field). A child of `keys_api`, whose world it shares.
use chrono::Utc;
use domain::accounts::throttle;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

async fn put_as(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    send(app.client.put(app.url(path)).bearer_auth(token).json(body)).await
}

/// What `/v1/keys/verify` answers for `key` asking for `orders:read`.
async fn verify_code(app: &TestApp, key: &str) -> String {
    let r = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&json!({ "key": key, "scopes": ["orders:read"] }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(r).await;
    assert_eq!(status, 200, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

/// Every admin operation, with a body that would succeed for an admin.
fn admin_operations(user: &str, plan: &str) -> Vec<(Method, String, Value)> {
    let mut ops = vec![
        (Method::GET, "/v1/plans".to_owned(), Value::Null),
        (
            Method::POST,
            "/v1/plans".to_owned(),
            json!({ "name": "Sneaky" }),
        ),
        (Method::GET, format!("/v1/plans/{plan}"), Value::Null),
        (
            Method::PATCH,
            format!("/v1/plans/{plan}"),
            json!({ "name": "Hacked" }),
        ),
        (Method::POST, format!("/v1/plans/{plan}/default"), json!({})),
        (
            Method::PUT,
            format!("/v1/users/{user}/plan"),
            json!({ "plan_id": plan }),
        ),
        (Method::GET, "/v1/users".to_owned(), Value::Null),
        (Method::GET, format!("/v1/users/{user}"), Value::Null),
        (
            Method::PUT,
            format!("/v1/users/{user}/role"),
            json!({ "role": "admin" }),
        ),
    ];
    ops.push((
        Method::POST,
        "/v1/users/invitations".to_owned(),
        json!({ "email": "sneaky@example.com" }),
    ));
    for action in [
        "disable",
        "enable",
        "unlock",
        "reset-2fa",
        "end-sessions",
        "resend-verification",
    ] {
        ops.push((
            Method::POST,
            format!("/v1/users/{user}/{action}"),
            json!({}),
        ));
    }
    ops
}

/// How many plan and user changes the audit log holds.
async fn changes(app: &TestApp, admin: &str) -> usize {
    let mut n = 0;
    for family in ["plan.", "user.", "2fa."] {
        n += audit_events(app, admin, &format!("/v1/audit?action={family}&limit=200"))
            .await
            .len();
    }
    n
}

async fn call(app: &TestApp, token: Option<&str>, op: &(Method, String, Value)) -> Response {
    let (method, path, body) = op;
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if !body.is_null() {
        request = request.json(body);
    }
    send(request).await
}

async fn admin_operations_need_an_admins_key_with_the_admin_scope(app: &TestApp) {
    let w = world(app).await;
    let plan = success(
        post_as(
            app,
            &w.admin.token.bearer,
            "/v1/plans",
            &json!({ "name": "Gold" }),
        )
        .await,
        201,
    )
    .await;
    let plan_id = id(&plan);
    // The admin's key for everyday work: every developer scope, but not `admin`.
    let everyday = keyport_key(app, &w.admin.actor, "everyday", &DEVELOPER_SCOPES).await;
    let before = success(
        get_as(
            app,
            &w.admin.token.bearer,
            &format!("/v1/users/{}", w.bob.id),
        )
        .await,
        200,
    )
    .await;
    let changes_before = changes(app, &w.admin.token.bearer).await;
    for op in admin_operations(&w.bob.id, &plan_id) {
        unauthorized(call(app, None, &op).await).await;
        unauthorized(call(app, Some("kp_not_a_real_key"), &op).await).await;
        let body = forbidden(call(app, Some(&w.ada.token.bearer), &op).await).await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("admin"),
            "{} {}: {body}",
            op.0,
            op.1
        );
        forbidden(call(app, Some(&everyday.bearer), &op).await).await;
    }
    // Nothing changed: Bob is the same, no plan called Sneaky, Gold is not the default.
    let after = success(
        get_as(
            app,
            &w.admin.token.bearer,
            &format!("/v1/users/{}", w.bob.id),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(before, after);
    let plans = success(get_as(app, &w.admin.token.bearer, "/v1/plans").await, 200).await;
    let names: Vec<&str> = strs(plans["plans"].as_array().unwrap(), "name");
    assert!(!names.contains(&"Sneaky"), "{plans}");
    let gold = success(
        get_as(app, &w.admin.token.bearer, &format!("/v1/plans/{plan_id}")).await,
        200,
    )
    .await;
    assert_eq!(gold["is_default"], false);
    assert_eq!(gold["name"], "Gold");
    assert_eq!(changes(app, &w.admin.token.bearer).await, changes_before);

    // An admin demoted by another admin loses the power at once, with the same key.
    let other = app
        .state
        .accounts
        .create_admin("second@example.com", PASSWORD)
        .await
        .unwrap();
    let other_actor = domain::service::Actor::new(other.id.clone(), true, Default::default());
    let other_token = keyport_key(app, &other_actor, "admin", &["admin"]).await;
    success(get_as(app, &other_token.bearer, "/v1/users").await, 200).await;
    let demoted = success(
        put_as(
            app,
            &w.admin.token.bearer,
            &format!("/v1/users/{}/role", other.id),
            &json!({ "role": "developer" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(demoted["role"], "developer");
    forbidden(get_as(app, &other_token.bearer, "/v1/users").await).await;
}

async fn admins_manage_users_over_the_api(app: &TestApp) {
    let w = world(app).await;
    let admin = &w.admin.token.bearer;
    let ada_key = create_orders_key(app, &w.ada.token.bearer, "shop").await;
    let ada_plain = ada_key["key"].as_str().unwrap().to_owned();
    assert_eq!(verify_code(app, &ada_plain).await, "VALID");

    // List, search and pages.
    let all = success(get_as(app, admin, "/v1/users").await, 200).await;
    assert_eq!(all["total"], 3, "{all}");
    let mut emails = strs(all["users"].as_array().unwrap(), "email");
    let created: Vec<&str> = strs(all["users"].as_array().unwrap(), "created_at");
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {all}"
    );
    emails.sort();
    assert_eq!(
        emails,
        ["ada@example.com", "bob@example.com", "root@example.com"]
    );
    let found = success(get_as(app, admin, "/v1/users?q=ADA").await, 200).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["id"], w.ada.id.as_str());
    assert_eq!(found["users"][0]["role"], "developer");
    assert_eq!(found["users"][0]["status"], "active");
    assert_eq!(found["users"][0]["locked"], false);
    let page = success(get_as(app, admin, "/v1/users?limit=1&offset=1").await, 200).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0], all["users"][1]);
    let none = success(get_as(app, admin, "/v1/users?q=nobody").await, 200).await;
    assert_eq!(none["users"], json!([]));
    assert_eq!(none["total"], 0);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("offset=1000001", "offset"),
        ("limit=many", "query"),
        ("q=a%00b", "q"),
    ] {
        invalid(
            get_as(app, admin, &format!("/v1/users?{query}")).await,
            field,
        )
        .await;
    }
    // No field that could leak a credential.
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["password", "totp_secret", "recovery"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Disable: Ada's keys stop verifying (her management key too), then enable brings them back.
    let ada_path = format!("/v1/users/{}", w.ada.id);
    let disabled = success(
        post_as(app, admin, &format!("{ada_path}/disable"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    assert_ne!(verify_code(app, &ada_plain).await, "VALID");
    unauthorized(get_as(app, &w.ada.token.bearer, "/v1/keys").await).await;
    let enabled = success(
        post_as(app, admin, &format!("{ada_path}/enable"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(verify_code(app, &ada_plain).await, "VALID");
    success(get_as(app, &w.ada.token.bearer, "/v1/keys").await, 200).await;

    // Role: promoted, Ada's admin-scoped key would act on everything; demoted, back.
    let promoted = success(
        put_as(
            app,
            admin,
            &format!("{ada_path}/role"),
            &json!({ "role": "admin" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(promoted["role"], "admin");
    let demoted = success(
        put_as(
            app,
            admin,
            &format!("{ada_path}/role"),
            &json!({ "role": "developer" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(demoted["role"], "developer");
    invalid(
        put_as(
            app,
            admin,
            &format!("{ada_path}/role"),
            &json!({ "role": "root" }),
        )
        .await,
        "role",
    )
    .await;
    invalid(
        put_as(
            app,
            admin,
            &format!("{ada_path}/role"),
            &json!({ "role": "admin", "x": 1 }),
        )
        .await,
        "x",
    )
    .await;

    // Unlock: 100 failed sign-ins lock Ada out; the admin sees it and clears it.
    let counter = throttle::email_key(&w.ada.email);
    for _ in 0..100 {
        throttle::record_failure(&app.state.db, &counter, &throttle::ACCOUNT, Utc::now())
            .await
            .unwrap();
    }
    let locked = success(get_as(app, admin, &ada_path).await, 200).await;
    assert_eq!(locked["locked"], true);
    let unlocked = success(
        post_as(app, admin, &format!("{ada_path}/unlock"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(unlocked["locked"], false);
    app.state
        .accounts
        .sign_in_password(
            &w.ada.email,
            PASSWORD,
            &RequestContext::default(),
            Utc::now(),
        )
        .await
        .expect("Ada signs in again");

    // Reset 2FA: Ada enrolled, the admin turns it off and her sessions end.
    let accounts = &app.state.accounts;
    let enrolment = accounts.begin_enrolment(&w.ada.id).await.unwrap();
    let seed = domain::accounts::totp::Seed::from_base32(&enrolment.setup_key).unwrap();
    accounts
        .confirm_enrolment(
            &w.ada.id,
            &enrolment.binding,
            &seed.code_at(Utc::now().timestamp() as u64),
            &RequestContext::default(),
            Utc::now(),
        )
        .await
        .unwrap();
    let enrolled = success(get_as(app, admin, &ada_path).await, 200).await;
    assert_eq!(enrolled["totp_enabled"], true);
    let reset = success(
        post_as(app, admin, &format!("{ada_path}/reset-2fa"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(reset["totp_enabled"], false);
    success(
        post_as(app, admin, &format!("{ada_path}/end-sessions"), &json!({})).await,
        200,
    )
    .await;
    // Email is off here: there is no confirmation link to send.
    conflict(
        post_as(
            app,
            admin,
            &format!("{ada_path}/resend-verification"),
            &json!({}),
        )
        .await,
    )
    .await;

    // Invitations need email, which is off here.
    conflict(
        post_as(
            app,
            admin,
            "/v1/users/invitations",
            &json!({ "email": "newcomer@example.com" }),
        )
        .await,
    )
    .await;

    // The admin's own account is refused, whatever the action; unknown ids are 404.
    let me = format!("/v1/users/{}", w.admin.id);
    for action in ["disable", "unlock", "reset-2fa", "end-sessions"] {
        conflict(post_as(app, admin, &format!("{me}/{action}"), &json!({})).await).await;
    }
    conflict(
        put_as(
            app,
            admin,
            &format!("{me}/role"),
            &json!({ "role": "developer" }),
        )
        .await,
    )
    .await;
    let still = success(get_as(app, admin, &me).await, 200).await;
    assert_eq!(
        (&still["role"], &still["status"]),
        (&json!("admin"), &json!("active"))
    );
    for path in [
        "/v1/users/usr_00000000000000000000",
        "/v1/users/not-a-user",
        "/v1/users/key_00000000000000000000",
    ] {
        not_found(get_as(app, admin, path).await).await;
        not_found(post_as(app, admin, &format!("{path}/disable"), &json!({})).await).await;
    }

    // Every change is in the audit log, by the admin, about Ada.
    let events = audit_events(
        app,
        admin,
        &format!("/v1/audit?target={}&limit=200", w.ada.id),
    )
    .await;
    let actions = strs(&events, "action");
    for action in [
        "user.disable",
        "user.enable",
        "user.promote",
        "user.demote",
        "user.unlock",
        "2fa.reset",
        "user.end_sessions",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn admins_manage_plans_over_the_api(app: &TestApp) {
    let w = world(app).await;
    let admin = &w.admin.token.bearer;
    // The admin works on a plan without limits, so making a tight plan the default later does
    // not throttle this test's own calls.
    let ops = success(
        post_as(app, admin, "/v1/plans", &json!({ "name": "Ops" })).await,
        201,
    )
    .await;
    success(
        put_as(
            app,
            admin,
            &format!("/v1/users/{}/plan", w.admin.id),
            &json!({ "plan_id": id(&ops) }),
        )
        .await,
        200,
    )
    .await;
    let created = success(
        post_as(
            app,
            admin,
            "/v1/plans",
            &json!({
                "name": "Tiny",
                "rate_limit": { "limit": 2, "period_s": 3600 },
                "quota": { "limit": 1000, "period": "month" },
                "max_active_keys": 3,
                "max_lifetime_days": 90,
                "limit_scope": "developer",
            }),
        )
        .await,
        201,
    )
    .await;
    let tiny = id(&created);
    assert!(tiny.starts_with("pln_"), "{created}");
    assert_eq!(
        created["rate_limit"],
        json!({ "limit": 2, "period_s": 3600 })
    );
    assert_eq!(
        created["quota"],
        json!({ "limit": 1000, "period": "month" })
    );
    assert_eq!(created["max_active_keys"], 3);
    assert_eq!(created["limit_scope"], "developer");
    assert_eq!(created["is_default"], false);

    // Refused input names the field, and creates nothing.
    for (body, field) in [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "Tiny" }), "name"),
        (
            json!({ "name": "A", "rate_limit": { "limit": 0, "period_s": 1 } }),
            "rate_limit",
        ),
        (
            json!({ "name": "A", "rate_limit": { "limit": 5, "period_s": 86401 } }),
            "rate_limit",
        ),
        // Would wrap around to "no limit" in a 32-bit column.
        (
            json!({ "name": "A", "rate_limit": { "limit": 4_000_000_000u64, "period_s": 1 } }),
            "rate_limit",
        ),
        (json!({ "name": "A", "burst": 0 }), "burst"),
        (json!({ "name": "A", "burst": 1_000_000_001 }), "burst"),
        // A burst that would take 11 years to refill at one request a day: the limiter's
        // nanosecond arithmetic would overflow.
        (
            json!({ "name": "A", "rate_limit": { "limit": 1, "period_s": 86400 }, "burst": 4000 }),
            "burst",
        ),
        (
            json!({ "name": "A", "quota": { "limit": 0, "period": "day" } }),
            "quota",
        ),
        (
            json!({ "name": "A", "max_lifetime_days": 36_501 }),
            "max_lifetime_days",
        ),
        (json!({ "name": "A\u{0}B" }), "name"),
        (
            json!({ "name": "A", "quota": { "limit": 10, "period": "week" } }),
            "quota",
        ),
        (
            json!({ "name": "A", "quota": { "limit": u64::MAX, "period": "day" } }),
            "quota",
        ),
        (
            json!({ "name": "A", "max_lifetime_days": 0 }),
            "max_lifetime_days",
        ),
        (
            json!({ "name": "A", "max_active_keys": 4_000_000 }),
            "max_active_keys",
        ),
        (json!({ "name": "A", "limit_scope": "team" }), "limit_scope"),
        (json!({ "name": "A", "is_default": true }), "is_default"),
    ] {
        invalid(post_as(app, admin, "/v1/plans", &body).await, field).await;
    }
    let plans = success(get_as(app, admin, "/v1/plans").await, 200).await;
    let names = strs(plans["plans"].as_array().unwrap(), "name");
    assert_eq!(
        names.iter().filter(|n| n.starts_with('A')).count(),
        0,
        "{plans}"
    );
    // A year to refill is still fine.
    success(
        post_as(
            app,
            admin,
            "/v1/plans",
            &json!({ "name": "Slow", "rate_limit": { "limit": 1, "period_s": 86400 }, "burst": 365 }),
        )
        .await,
        201,
    )
    .await;
    // Keys have the same bounds, admins included (they may exceed plans, not the columns).
    for (field, value) in [
        (
            "ratelimit",
            json!({ "limit": 4_000_000_000u64, "period_s": 1 }),
        ),
        (
            "quota",
            json!({ "limit": 2_000_000_000_000_000u64, "period": "day" }),
        ),
    ] {
        let mut body = orders_key("huge");
        body[field] = value;
        body["owner_id"] = json!(w.ada.id);
        invalid(post_as(app, admin, "/v1/keys", &body).await, field).await;
    }
    assert_eq!(
        plans["plans"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["is_default"] == true)
            .count(),
        1,
        "exactly one default plan: {plans}"
    );

    // PATCH changes what it names: a new name keeps the limits, null removes one.
    let path = format!("/v1/plans/{tiny}");
    let renamed = success(
        patch_as(app, admin, &path, &json!({ "name": "Small" })).await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "Small");
    assert_eq!(renamed["rate_limit"], created["rate_limit"]);
    // Each key its own limit from here (a shared one would count Ada's management key too).
    let unquoted = success(
        patch_as(
            app,
            admin,
            &path,
            &json!({ "quota": null, "limit_scope": "key" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(unquoted["quota"], Value::Null);
    assert_eq!(unquoted["limit_scope"], "key");
    assert_eq!(unquoted["max_active_keys"], 3);
    assert_eq!(unquoted["name"], "Small");
    invalid(
        patch_as(app, admin, &path, &json!({ "burst": 0 })).await,
        "burst",
    )
    .await;
    not_found(patch_as(app, admin, "/v1/plans/pln_00000000000000000000", &json!({})).await).await;
    not_found(get_as(app, admin, "/v1/plans/garbage").await).await;

    // Assigning: Ada's key gets the plan's limit (2 an hour) at once, and her /v1/me shows it.
    let key = create_orders_key(app, &w.ada.token.bearer, "limited").await;
    let plain = key["key"].as_str().unwrap().to_owned();
    let assigned = success(
        put_as(
            app,
            admin,
            &format!("/v1/users/{}/plan", w.ada.id),
            &json!({ "plan_id": tiny }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(assigned["plan_id"], tiny.as_str());
    let me = success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
    assert_eq!(me["plan"]["id"], tiny.as_str());
    assert_eq!(me["plan"]["rate_limit"]["limit"], 2);
    let codes = [
        verify_code(app, &plain).await,
        verify_code(app, &plain).await,
        verify_code(app, &plain).await,
    ];
    assert_eq!(codes, ["VALID", "VALID", "RATE_LIMITED"].map(String::from));
    // Bob, on the default plan, is not limited by it.
    let bobs = create_orders_key(app, &w.bob.token.bearer, "free").await;
    for _ in 0..3 {
        assert_eq!(
            verify_code(app, bobs["key"].as_str().unwrap()).await,
            "VALID"
        );
    }

    let ada_plan = format!("/v1/users/{}/plan", w.ada.id);
    invalid(
        put_as(
            app,
            admin,
            &ada_plan,
            &json!({ "plan_id": "pln_00000000000000000000" }),
        )
        .await,
        "plan_id",
    )
    .await;
    invalid(put_as(app, admin, &ada_plan, &json!({})).await, "plan_id").await;
    invalid(
        put_as(app, admin, &ada_plan, &json!({ "plan_id": "pln_\u{0}" })).await,
        "plan_id",
    )
    .await;
    not_found(
        put_as(
            app,
            admin,
            "/v1/users/usr_00000000000000000000/plan",
            &json!({ "plan_id": tiny }),
        )
        .await,
    )
    .await;
    let back = success(
        put_as(app, admin, &ada_plan, &json!({ "plan_id": null })).await,
        200,
    )
    .await;
    assert_eq!(back["plan_id"], Value::Null);
    let me = success(get_as(app, &w.ada.token.bearer, "/v1/me").await, 200).await;
    assert_ne!(me["plan"]["id"], tiny.as_str());
    assert_eq!(me["plan"]["is_default"], true);

    // Default: the new default is the only one, and sign-ups get it.
    let made = success(
        post_as(app, admin, &format!("{path}/default"), &json!({})).await,
        200,
    )
    .await;
    assert_eq!(made["is_default"], true);
    let plans = success(get_as(app, admin, "/v1/plans").await, 200).await;
    let defaults: Vec<&str> = plans["plans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, [tiny.as_str()]);
    let me = success(get_as(app, &w.bob.token.bearer, "/v1/me").await, 200).await;
    assert_eq!(me["plan"]["id"], tiny.as_str());
    not_found(
        post_as(
            app,
            admin,
            "/v1/plans/pln_00000000000000000000/default",
            &json!({}),
        )
        .await,
    )
    .await;

    let events = audit_events(app, admin, "/v1/audit?action=plan.&limit=200").await;
    let actions = strs(&events, "action");
    for action in ["plan.create", "plan.update", "plan.default"] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn hygiene_lists_and_revokes_only_the_callers_keys(app: &TestApp) {
    let w = world(app).await;
    // Keys that never expire are flagged; Ada's and Bob's (the admin made them: their plan
    // would not let them).
    let forever = |name: &str, owner: &str| json!({ "name": name, "api": "orders", "scopes": ["orders:read"], "owner_id": owner });
    let ada_key = success(
        post_as(
            app,
            &w.admin.token.bearer,
            "/v1/keys",
            &forever("ada-forever", &w.ada.id),
        )
        .await,
        201,
    )
    .await;
    let bob_key = success(
        post_as(
            app,
            &w.admin.token.bearer,
            "/v1/keys",
            &forever("bob-forever", &w.bob.id),
        )
        .await,
        201,
    )
    .await;
    let expiring = create_orders_key(app, &w.ada.token.bearer, "ada-30-days").await;

    let report = success(get_as(app, &w.ada.token.bearer, "/v1/hygiene").await, 200).await;
    let flagged = report["keys"].as_array().unwrap();
    let ids = strs(flagged, "key_id");
    assert!(ids.contains(&id(&ada_key).as_str()), "{report}");
    assert!(
        !ids.contains(&id(&bob_key).as_str()),
        "Bob's key leaked to Ada: {report}"
    );
    assert!(
        !ids.contains(&id(&expiring).as_str()),
        "a healthy key is not flagged: {report}"
    );
    let ada_row = flagged
        .iter()
        .find(|k| k["key_id"] == id(&ada_key).as_str())
        .unwrap();
    assert_eq!(ada_row["issues"], json!(["never_expires"]));
    assert_eq!(ada_row["owner_email"], "ada@example.com");
    let text = serde_json::to_string(&report).unwrap();
    assert!(
        !text.contains(ada_key["key"].as_str().unwrap()),
        "no plaintext"
    );

    let only = success(
        get_as(app, &w.ada.token.bearer, "/v1/hygiene?issue=expiring_soon").await,
        200,
    )
    .await;
    assert!(
        !strs(only["keys"].as_array().unwrap(), "key_id").contains(&id(&ada_key).as_str()),
        "{only}"
    );
    invalid(
        get_as(app, &w.ada.token.bearer, "/v1/hygiene?issue=smelly").await,
        "issue",
    )
    .await;
    let everyone = success(get_as(app, &w.admin.token.bearer, "/v1/hygiene").await, 200).await;
    let all_ids = strs(everyone["keys"].as_array().unwrap(), "key_id");
    assert!(all_ids.contains(&id(&ada_key).as_str()) && all_ids.contains(&id(&bob_key).as_str()));

    // Bulk revoke: Ada's key goes; Bob's and an unknown one fail as not found; Bob's still works.
    let bulk = |ids: Vec<String>| json!({ "key_ids": ids, "reason": "hygiene" });
    let result = success(
        post_as(
            app,
            &w.ada.token.bearer,
            "/v1/hygiene/revoke",
            &bulk(vec![
                id(&ada_key),
                id(&bob_key),
                UNKNOWN_KEY.into(),
                id(&ada_key),
                "not a key\u{0}".into(),
            ]),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        strs(result["revoked"].as_array().unwrap(), "id"),
        [id(&ada_key)]
    );
    assert_eq!(result["revoked"][0]["status"], "revoked");
    let failed = result["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3, "{result}");
    assert!(failed.iter().all(|f| f["code"] == "not_found"), "{result}");
    assert_eq!(
        verify_code(app, ada_key["key"].as_str().unwrap()).await,
        "REVOKED"
    );
    assert_eq!(
        verify_code(app, bob_key["key"].as_str().unwrap()).await,
        "VALID"
    );
    // Again: already revoked is a conflict, per key.
    let again = success(
        post_as(
            app,
            &w.ada.token.bearer,
            "/v1/hygiene/revoke",
            &bulk(vec![id(&ada_key)]),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["failed"][0]["code"], "conflict", "{again}");

    // Refused as a whole: no ids, too many, a reason too long (then nothing is revoked).
    invalid(
        post_as(
            app,
            &w.ada.token.bearer,
            "/v1/hygiene/revoke",
            &bulk(vec![]),
        )
        .await,
        "key_ids",
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("key_{i:020}")).collect();
    invalid(
        post_as(app, &w.ada.token.bearer, "/v1/hygiene/revoke", &bulk(many)).await,
        "key_ids",
    )
    .await;
    invalid(
        post_as(
            app,
            &w.ada.token.bearer,
            "/v1/hygiene/revoke",
            &json!({ "key_ids": [id(&expiring)], "reason": "x".repeat(501) }),
        )
        .await,
        "reason",
    )
    .await;
    invalid(
        post_as(
            app,
            &w.ada.token.bearer,
            "/v1/hygiene/revoke",
            &json!({ "key_ids": [id(&expiring)], "reason": "a\u{0}b" }),
        )
        .await,
        "reason",
    )
    .await;
    assert_eq!(
        verify_code(app, expiring["key"].as_str().unwrap()).await,
        "VALID"
    );
    // Scopes hold: reading needs keys:read, revoking keys:write.
    let reader = keyport_key(app, &w.ada.actor, "reader", &["keys:read"]).await;
    success(get_as(app, &reader.bearer, "/v1/hygiene").await, 200).await;
    forbidden(
        post_as(
            app,
            &reader.bearer,
            "/v1/hygiene/revoke",
            &bulk(vec![id(&expiring)]),
        )
        .await,
    )
    .await;
    let usage_only = keyport_key(app, &w.ada.actor, "usage", &["usage:read"]).await;
    forbidden(get_as(app, &usage_only.bearer, "/v1/hygiene").await).await;
    assert_eq!(
        verify_code(app, expiring["key"].as_str().unwrap()).await,
        "VALID"
    );
}

on_both_databases!(
    admin_operations_need_an_admins_key_with_the_admin_scope,
    admins_manage_users_over_the_api,
    admins_manage_plans_over_the_api,
    hygiene_lists_and_revokes_only_the_callers_keys,
);
