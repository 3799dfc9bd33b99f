//! `/docs`: the public developer guide: keys, verification, forward authentication for gateways,
//! the management REST API and how to keep keys safe.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::copy_button::CopyButton;

const H2: &str = "scroll-mt-20 text-2xl font-semibold tracking-tight";
const H3: &str = "mt-10 scroll-mt-20 text-lg font-semibold";
const P: &str = "mt-4 leading-7 text-slate-700 dark:text-slate-300";
const SECTION: &str =
    "border-t border-slate-200 pt-12 first:border-t-0 first:pt-0 dark:border-slate-800";
const IC: &str = "rounded bg-slate-100 px-1 py-0.5 font-mono text-[0.8125rem] text-slate-800 dark:bg-slate-800 dark:text-slate-200";
const LINK: &str = "font-medium text-indigo-600 underline decoration-indigo-300 underline-offset-2 hover:text-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 dark:text-indigo-400 dark:decoration-indigo-700";
const LIST: &str = "mt-4 list-disc space-y-2 pl-5 leading-7 text-slate-700 marker:text-slate-400 dark:text-slate-300";
const NOTE: &str = "mt-4 rounded-lg border-l-4 border-amber-400 bg-amber-50 px-4 py-3 text-sm leading-6 text-amber-900 dark:border-amber-500 dark:bg-amber-950/40 dark:text-amber-100";
const TOC_LINK: &str = "block rounded-md px-2 py-1 font-medium text-slate-700 hover:bg-slate-100 hover:text-slate-900 focus-visible:outline-2 focus-visible:outline-indigo-600 dark:text-slate-200 dark:hover:bg-slate-800 dark:hover:text-white";
const TOC_SUB: &str = "block rounded-md px-2 py-0.5 text-slate-500 hover:text-slate-900 focus-visible:outline-2 focus-visible:outline-indigo-600 dark:text-slate-400 dark:hover:text-white";

/// The table of contents: section anchor, label, and the subsections (shown on desktop only).
/// (anchor, title) of a table-of-contents entry.
type TocLink = (&'static str, &'static str);

const TOC: &[(&str, &str, &[TocLink])] = &[
    (
        "keys",
        "Keys and scopes",
        &[
            ("key-format", "Key format"),
            ("apis-and-plans", "APIs, scopes and plans"),
            ("key-status", "Key status"),
        ],
    ),
    (
        "verify",
        "Verify a key",
        &[
            ("verify-request", "Request"),
            ("verify-response", "Response"),
            ("result-codes", "Result codes"),
        ],
    ),
    (
        "forward-auth",
        "Forward authentication",
        &[
            ("forward-auth-statuses", "Status codes"),
            ("nginx", "nginx"),
            ("traefik", "Traefik"),
            ("envoy", "Envoy"),
        ],
    ),
    (
        "management-api",
        "Management API",
        &[
            ("api-auth", "Authentication"),
            ("api-errors", "Errors"),
            ("endpoints", "Endpoints"),
            ("cli", "Command line"),
        ],
    ),
    ("usage", "Usage and alerts", &[("alerts", "Alerts")]),
    (
        "webhooks",
        "Webhooks",
        &[
            ("webhook-events", "Events"),
            ("webhook-signatures", "Verifying signatures"),
            ("webhook-retries", "Retries"),
        ],
    ),
    (
        "key-safety",
        "Keeping keys safe",
        &[
            ("leaked-keys", "If a key leaks"),
            ("leak-reports", "Leak reports and scanning"),
        ],
    ),
];

const ANATOMY: [(&str, &str, &str); 3] = [
    ("Prefix", "kp_", "3 characters, the same on every key"),
    (
        "Body",
        "40 random characters",
        "Base62 (0-9, A-Z, a-z) from the operating system's CSPRNG",
    ),
    ("Checksum", "6 characters", "CRC32 of the body, in base62"),
];

const CONCEPTS: [(&str, &str); 4] = [
    (
        "APIs",
        "A service that keys grant access to, named by a slug such as orders. Admins register APIs; each key belongs to exactly one.",
    ),
    (
        "Scopes",
        "Permissions an API defines, such as orders:read or orders:write. A key holds the scopes chosen for it from those of its API, and a verification can require any of them.",
    ),
    (
        "Versions",
        "An API can list versions. An active version is served normally; a deprecated version still works and announces its sunset date; a retired version is refused with VERSION_RETIRED.",
    ),
    (
        "Plans",
        "Admins assign each developer a plan that sets the rate limit, the quota per day or month, the most active keys and the longest key lifetime. A key can have tighter limits than its plan, never looser ones.",
    ),
];

const STATUS_HEAD: &[&str] = &["Status", "Meaning", "Verifies"];
const STATUS_ROWS: &[&[&str]] = &[
    &["active", "Usable.", "Yes"],
    &["expiring_soon", "Expires within 7 days.", "Yes"],
    &[
        "expired",
        "Past its expiry time, or past the grace period of a rotation.",
        "No",
    ],
    &[
        "rotating",
        "Replaced by a new key; keeps working until its grace period ends.",
        "Yes",
    ],
    &["revoked", "Revoked, for good.", "No"],
    &[
        "disabled",
        "Switched off by its owner or an admin, or its owner's account is disabled. Reversible.",
        "No",
    ],
];

const FIELD_HEAD: &[&str] = &["Field", "Description"];
const VERIFY_REQUEST_ROWS: &[&[&str]] = &[
    &["key", "Required. The key the client presented."],
    &[
        "api",
        "The slug of the API being called. A key of another API is not valid for it.",
    ],
    &[
        "scopes",
        "The scopes the request needs. The key must hold all of them.",
    ],
    &[
        "ip",
        "The client's IP address, checked against the key's IP allowlist.",
    ],
    &[
        "version",
        "The API version being called, checked against the API's versions.",
    ],
    &[
        "cost",
        "How many units the request takes from the rate limit and the quota. Default 1.",
    ],
];
const VERIFY_RESPONSE_ROWS: &[&[&str]] = &[
    &["valid", "true only when code is VALID."],
    &["code", "The outcome; see Result codes below."],
    &["key_id", "The key's id."],
    &["owner_id", "The id of the key's owner."],
    &["api", "The slug of the key's API."],
    &["scopes", "The scopes the key holds."],
    &[
        "expires_at",
        "When the key expires (RFC 3339, UTC), or null.",
    ],
    &[
        "ratelimit",
        "limit, remaining and reset_at of the current rate-limit window, or null.",
    ],
    &[
        "quota",
        "limit, remaining, period (day or month) and reset_at, or null.",
    ],
    &[
        "deprecation",
        "version and sunset_at when the requested version is deprecated, otherwise null.",
    ],
];

const CODE_HEAD: &[&str] = &["Code", "Meaning"];
const CODE_ROWS: &[&[&str]] = &[
    &[
        "MALFORMED",
        "Not a Keyport key: wrong prefix, length or characters, or a checksum that does not match. Refused before any lookup.",
    ],
    &["NOT_FOUND", "Well-formed, but no such key exists."],
    &[
        "REVOKED",
        "The key has been revoked. This is permanent, so it wins over DISABLED.",
    ],
    &[
        "DISABLED",
        "The key is switched off, or its owner's account is disabled.",
    ],
    &[
        "EXPIRED",
        "The key is past its expiry time, or past the grace period of a rotation.",
    ],
    &[
        "IP_NOT_ALLOWED",
        "The key has an IP allowlist and ip is not in it.",
    ],
    &[
        "INSUFFICIENT_SCOPE",
        "The key lacks one or more of the requested scopes.",
    ],
    &["VERSION_RETIRED", "The requested API version is retired."],
    &[
        "RATE_LIMITED",
        "The key's rate limit is used up until ratelimit.reset_at.",
    ],
    &[
        "QUOTA_EXCEEDED",
        "The key's daily or monthly quota is used up until quota.reset_at.",
    ],
    &["VALID", "Every check passed; valid is true."],
];

const HEADER_HEAD: &[&str] = &["Header", "Description"];
const FORWARD_HEADER_ROWS: &[&[&str]] = &[
    &["X-Keyport-Api", "The slug of the API behind the route."],
    &[
        "X-Keyport-Scopes",
        "The scopes the route needs, comma separated, such as orders:read,orders:write.",
    ],
    &["X-Keyport-Version", "The API version behind the route."],
];

const FORWARD_STATUS_HEAD: &[&str] = &["Status", "When", "Headers"];
const FORWARD_STATUS_ROWS: &[&[&str]] = &[
    &[
        "200",
        "VALID",
        "X-Keyport-Key-Id, X-Keyport-Owner-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset; Deprecation and Sunset for a deprecated version",
    ],
    &[
        "401",
        "No key, or MALFORMED, NOT_FOUND, REVOKED, DISABLED, EXPIRED",
        "WWW-Authenticate, X-Keyport-Code",
    ],
    &[
        "403",
        "IP_NOT_ALLOWED, INSUFFICIENT_SCOPE, VERSION_RETIRED",
        "X-Keyport-Code",
    ],
    &[
        "429",
        "RATE_LIMITED, QUOTA_EXCEEDED",
        "Retry-After, X-Keyport-Code",
    ],
];

const SCOPE_HEAD: &[&str] = &["Scope", "Allows"];
const SCOPE_ROWS: &[&[&str]] = &[
    &["keys:read", "Listing and reading keys."],
    &[
        "keys:write",
        "Creating, changing, rotating and revoking keys.",
    ],
    &["usage:read", "Reading key usage."],
    &["audit:read", "Reading the audit log."],
    &[
        "admin",
        "Everything, including registering APIs and acting on other users' keys. Takes effect only on a key owned by an admin.",
    ],
];

const ERROR_HEAD: &[&str] = &["Status and code", "When"];
const ERROR_ROWS: &[&[&str]] = &[
    &[
        "400 bad_request",
        "The body is not JSON, or Content-Type is not application/json.",
    ],
    &[
        "401 unauthorized",
        "The key is missing, malformed, unknown, expired, revoked, disabled or of another API. Sent with WWW-Authenticate: Bearer.",
    ],
    &[
        "403 forbidden",
        "The key lacks the scope the endpoint needs, or the action is for admins only.",
    ],
    &[
        "404 not_found",
        "No such resource. Another user's key is also 404, never 403, so ids do not leak.",
    ],
    &[
        "409 conflict",
        "The current state forbids it: the slug is taken, the plan's active-key limit is reached, or the key is already revoked or rotated.",
    ],
    &[
        "422 validation_failed",
        "Invalid fields, listed in fields, or limits above your plan's.",
    ],
];

const VERIFY_CURL: &str = r#"curl "$KEYPORT_URL/v1/keys/verify" \
  -H "Content-Type: application/json" \
  -d '{
    "key": "kp_...",
    "api": "orders",
    "scopes": ["orders:read"],
    "ip": "203.0.113.7",
    "version": "v1",
    "cost": 1
  }'"#;

const VERIFY_RESPONSE: &str = r#"{
  "valid": true,
  "code": "VALID",
  "key_id": "key_8Hq2LmZ0aB3cD4eF5gH6",
  "owner_id": "usr_4k9XbQ2mN8pL1vR7tY3z",
  "api": "orders",
  "scopes": ["orders:read"],
  "expires_at": "2027-01-31T00:00:00Z",
  "ratelimit": {
    "limit": 5,
    "remaining": 4,
    "reset_at": "2026-12-01T09:30:01Z"
  },
  "quota": {
    "limit": 1000,
    "remaining": 958,
    "period": "day",
    "reset_at": "2026-12-02T00:00:00Z"
  },
  "deprecation": null
}"#;

const NGINX: &str = r#"location /orders/ {
    auth_request /_keyport;
    auth_request_set $keyport_key_id $upstream_http_x_keyport_key_id;
    proxy_set_header X-Keyport-Key-Id $keyport_key_id;
    proxy_pass http://127.0.0.1:8080;
}

location = /_keyport {
    internal;
    proxy_pass http://127.0.0.1:3000/v1/auth;
    proxy_pass_request_body off;
    proxy_set_header Content-Length "";
    proxy_set_header X-Original-URI $request_uri;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Keyport-Api "orders";
    proxy_set_header X-Keyport-Scopes "orders:read";
}"#;

const TRAEFIK: &str = r#"http:
  middlewares:
    orders-keyport-headers:
      headers:
        customRequestHeaders:
          X-Keyport-Api: "orders"
          X-Keyport-Scopes: "orders:read"
    keyport:
      forwardAuth:
        address: "http://keyport:3000/v1/auth"
        authResponseHeaders:
          - X-Keyport-Key-Id
          - X-Keyport-Owner-Id
  routers:
    orders:
      rule: "PathPrefix(`/orders`)"
      service: orders
      middlewares:
        - orders-keyport-headers
        - keyport"#;

const ENV_SETUP: &str = r#"export KEYPORT_URL="https://keyport.example.com"
read -rs KEYPORT_KEY && export KEYPORT_KEY"#;

const ERROR_EXAMPLE: &str = r#"{
  "error": {
    "code": "validation_failed",
    "message": "Some fields are invalid.",
    "fields": { "limit": "limit is 1 to 100" }
  }
}"#;

const CLI_USAGE: &str =
    "keyport keys create --owner EMAIL --api SLUG --scopes a,b --name NAME [--expires-in-days N]";

const CLI_EXAMPLE: &str = r#"export KEYPORT_KEY="$(keyport keys create --owner you@example.com --api keyport \
  --scopes keys:read,keys:write,audit:read --name laptop --expires-in-days 90)""#;

/// Every management endpoint: title (method and path), what it does, and a curl example.
const ENDPOINTS: [(&str, &str, &str); 21] = [
    (
        "GET /v1/me",
        "The owner of the key: id, email, role and the plan whose limits their keys get. Needs no scope.",
        r#"curl "$KEYPORT_URL/v1/me" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "GET /v1/apis",
        "Every API with its scopes and versions: what a key can be granted. Needs no scope.",
        r#"curl "$KEYPORT_URL/v1/apis" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "POST /v1/apis",
        "Admin only. Registers an API and answers 201 with it; 409 if the slug is taken.",
        r#"curl "$KEYPORT_URL/v1/apis" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "slug": "orders",
    "name": "Orders",
    "description": "Create and track orders.",
    "scopes": [{"name": "orders:read", "description": "Read orders"}],
    "versions": [{"name": "v1", "status": "active", "sunset_at": null}]
  }'"#,
    ),
    (
        "GET /v1/apis/{slug}",
        "One API, by slug.",
        r#"curl "$KEYPORT_URL/v1/apis/orders" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "PATCH /v1/apis/{slug}",
        "Admin only. Changes name, description, scopes or versions; scopes and versions replace the whole list. 409 if a removed scope is still held by keys.",
        r#"curl -X PATCH "$KEYPORT_URL/v1/apis/orders" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "versions": [
      {"name": "v1", "status": "deprecated", "sunset_at": "2027-06-30T00:00:00Z"},
      {"name": "v2", "status": "active", "sunset_at": null}
    ]
  }'"#,
    ),
    (
        "POST /v1/keys",
        "Needs keys:write. Creates a key and answers 201 with the key and, this once, its plaintext in the key field: store it now. Omit expires_at for a key that never expires, if your plan allows it. Admins can set owner_id to create a key for another user.",
        r#"curl "$KEYPORT_URL/v1/keys" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "ci",
    "api": "orders",
    "scopes": ["orders:read"],
    "expires_at": "2027-01-31T00:00:00Z",
    "ip_allowlist": ["203.0.113.0/24"],
    "ratelimit": {"limit": 5, "period_s": 1},
    "quota": {"limit": 1000, "period": "day"}
  }'"#,
    ),
    (
        "GET /v1/keys",
        "Needs keys:read. Your keys, newest first. Query parameters: limit (1 to 100, default 50), cursor, api, status; admins see every user's keys and can filter with owner_id.",
        r#"curl "$KEYPORT_URL/v1/keys?api=orders&status=active&limit=20" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "GET /v1/keys/{id}",
        "Needs keys:read. One key. Keys never carry their hash or plaintext.",
        r#"curl "$KEYPORT_URL/v1/keys/key_8Hq2LmZ0aB3cD4eF5gH6" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "PATCH /v1/keys/{id}",
        "Needs keys:write. Changes name, scopes, expires_at (null for never, if your plan allows it), ip_allowlist or enabled. Other fields are refused.",
        r#"curl -X PATCH "$KEYPORT_URL/v1/keys/key_8Hq2LmZ0aB3cD4eF5gH6" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "ci-main",
    "scopes": ["orders:read"],
    "expires_at": "2027-06-30T00:00:00Z",
    "ip_allowlist": ["203.0.113.0/24"],
    "enabled": true
  }'"#,
    ),
    (
        "POST /v1/keys/{id}/rotate",
        "Needs keys:write. Creates a replacement with the same settings and answers 201 with it, its plaintext key and replaces. The old key keeps working for grace_period_s seconds (0 to 2592000, default 0), then expires.",
        r#"curl "$KEYPORT_URL/v1/keys/key_8Hq2LmZ0aB3cD4eF5gH6/rotate" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{"grace_period_s": 86400}'"#,
    ),
    (
        "POST /v1/keys/{id}/revoke",
        "Needs keys:write. Revokes the key at once and for good. The reason is optional.",
        r#"curl "$KEYPORT_URL/v1/keys/key_8Hq2LmZ0aB3cD4eF5gH6/revoke" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{"reason": "leaked"}'"#,
    ),
    (
        "GET /v1/audit",
        "Needs audit:read. Events newest first: your own, or everyone's for admins. Query parameters: limit (1 to 200, default 50), cursor, actor_id, action (key.revoke, or key. for the whole family), target, from (inclusive) and to (exclusive) in RFC 3339.",
        r#"curl "$KEYPORT_URL/v1/audit?action=key.revoke&from=2026-01-01T00:00:00Z&limit=50" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "GET /v1/keys/{id}/usage",
        "Needs usage:read. One key's verifications over time: {\"granularity\", \"from\", \"to\", \"buckets\": [{\"start\", \"counts\": {\"VALID\": n, \"RATE_LIMITED\": n, ...}}]}, every bucket of the range included. Query parameters: from (default 24 hours before to), to (default now), granularity (minute, hour or day; default the coarsest that fits: minutes up to 3 hours, hours up to 8 days). At most 1,500 buckets. Another user's key answers 404.",
        r#"curl "$KEYPORT_URL/v1/keys/key_8fK2.../usage?from=2026-11-01T00:00:00Z&granularity=day" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "GET /v1/usage",
        "Needs usage:read. The same series for all of your keys; admins see the whole platform, or one user's keys with owner_id. Narrow to one API with api (its slug).",
        r#"curl "$KEYPORT_URL/v1/usage?api=orders&from=2026-11-21T00:00:00Z" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "GET /v1/alerts",
        "Needs usage:read. Open alerts on your keys (admins: every key's), newest first; all=true adds acknowledged ones. POST /v1/alerts/{id}/acknowledge (keys:write) clears one; another user's alert answers 404.",
        r#"curl "$KEYPORT_URL/v1/alerts" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "GET /v1/hygiene",
        "Needs keys:read. Live keys that deserve a look, oldest first, each with its issues: never_used, unused_30_days, expiring_soon, never_expires, owner_disabled (admins: every user's keys). Filter with issue. POST /v1/hygiene/revoke (keys:write) revokes up to 100 at once, each on its own: a key that is not yours fails as not_found and the others are still revoked.",
        r#"curl "$KEYPORT_URL/v1/hygiene/revoke" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{"key_ids": ["key_8Hq2LmZ0aB3cD4eF5gH6"], "reason": "unused"}'"#,
    ),
    (
        "POST /v1/plans",
        "Admin only. Creates a plan: default rate_limit, burst, quota, max_active_keys, max_lifetime_days, and limit_scope (key: each key its own limits; developer: a developer's keys share them). Also GET /v1/plans, GET and PATCH /v1/plans/{id} (null removes a limit; every key on the plan gets the change at once), POST /v1/plans/{id}/default, and PUT /v1/users/{id}/plan with {\"plan_id\"} (null: back to the default).",
        r#"curl "$KEYPORT_URL/v1/plans" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "Team",
    "rate_limit": {"limit": 100, "period_s": 1},
    "quota": {"limit": 1000000, "period": "month"},
    "max_active_keys": 20,
    "limit_scope": "developer"
  }'"#,
    ),
    (
        "GET /v1/users",
        "Admin only. Users newest first, with role, status, 2FA and lockout; q searches addresses, limit and offset page. Act on one with POST /v1/users/{id}/disable, enable, unlock, reset-2fa, end-sessions or resend-verification, and PUT /v1/users/{id}/role with {\"role\": \"admin\" | \"developer\"}. Your own account answers 409. POST /v1/users/invitations with {\"email\", \"role\", \"plan_id\"} mails an invitation (email on).",
        r#"curl "$KEYPORT_URL/v1/users?q=example.com&limit=20" \
  -H "Authorization: Bearer $KEYPORT_KEY""#,
    ),
    (
        "POST /v1/webhooks",
        "Needs webhooks:write. Registers an endpoint for your keys' events and answers 201 with it and its signing secret, shown this once. Also GET, PATCH and DELETE /v1/webhooks/{id}, POST .../rotate-secret, .../test, GET .../deliveries and POST .../deliveries/{id}/redeliver; see Webhooks below.",
        r#"curl "$KEYPORT_URL/v1/webhooks" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '{"url": "https://hooks.example.com/keyport", "events": ["key.revoked", "key.leaked"]}'"#,
    ),
    (
        "POST /v1/leaks",
        "Admins and secret-scanning partners (signed). Reports leaked tokens; every live key among them is revoked at once. Answers, per token, {\"token_hash\", \"token_type\", \"label\"}.",
        r#"curl "$KEYPORT_URL/v1/leaks" \
  -H "Authorization: Bearer $KEYPORT_KEY" \
  -H "Content-Type: application/json" \
  -d '[{"token": "kp_...", "type": "keyport_api_key", "url": "https://example.com/paste", "source": "paste"}]'"#,
    ),
    (
        "POST /v1/keys/verify",
        "Checks a key presented to your API; see Verify a key above.",
        VERIFY_CURL,
    ),
];

fn method_class(method: &str) -> &'static str {
    match method {
        "GET" => {
            "rounded px-1.5 py-0.5 font-mono text-xs font-semibold bg-emerald-100 text-emerald-800 dark:bg-emerald-900/60 dark:text-emerald-200"
        }
        "POST" => {
            "rounded px-1.5 py-0.5 font-mono text-xs font-semibold bg-indigo-100 text-indigo-800 dark:bg-indigo-900/60 dark:text-indigo-200"
        }
        _ => {
            "rounded px-1.5 py-0.5 font-mono text-xs font-semibold bg-amber-100 text-amber-800 dark:bg-amber-900/60 dark:text-amber-200"
        }
    }
}

/// A dark code panel with a caption and a copy button.
#[component]
fn CodeBlock(code: &'static str, caption: &'static str) -> impl IntoView {
    view! {
        <div class="mt-4 overflow-hidden rounded-lg border border-slate-200 dark:border-slate-700">
            <div class="flex items-center justify-between gap-3 border-b border-slate-700 bg-slate-800 px-4 py-1.5">
                <span class="truncate font-mono text-xs text-slate-300">{caption}</span>
                <CopyButton text=code.to_owned() label="Copy".to_owned() />
            </div>
            <pre
                tabindex="0"
                class="overflow-x-auto bg-slate-900 p-4 text-xs leading-relaxed text-slate-100 focus-visible:outline-2 focus-visible:-outline-offset-2 focus-visible:outline-indigo-400"
            ><code>{code}</code></pre>
        </div>
    }
}

/// A table whose first column names the row (shown as code).
#[component]
fn DocTable(
    caption: &'static str,
    head: &'static [&'static str],
    rows: &'static [&'static [&'static str]],
) -> impl IntoView {
    view! {
        <div
            tabindex="0"
            role="region"
            aria-label=caption
            class="mt-4 overflow-x-auto rounded-lg border border-slate-200 focus-visible:outline-2 focus-visible:outline-indigo-600 dark:border-slate-800"
        >
            <table class="min-w-full divide-y divide-slate-200 text-left text-sm dark:divide-slate-800">
                <caption class="sr-only">{caption}</caption>
                <thead class="bg-slate-50 dark:bg-slate-900/60">
                    <tr>
                        {head.iter().map(|&h| view! {
                            <th scope="col" class="px-4 py-2 font-semibold text-slate-900 dark:text-slate-100">{h}</th>
                        }).collect_view()}
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-200 dark:divide-slate-800">
                    {rows.iter().map(|row| {
                        let (first, rest) = row.split_first().map_or(("", &[][..]), |(f, r)| (*f, r));
                        view! {
                            <tr class="align-top">
                                <th scope="row" class="whitespace-nowrap px-4 py-2 font-normal">
                                    <code class="font-mono text-xs text-slate-900 dark:text-slate-100">{first}</code>
                                </th>
                                {rest.iter().map(|&cell| view! {
                                    <td class="px-4 py-2 leading-6 text-slate-600 dark:text-slate-400">{cell}</td>
                                }).collect_view()}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
pub fn Docs() -> impl IntoView {
    view! {
        <Title text="Documentation" />
        <div class="border-b border-slate-200 bg-gradient-to-b from-indigo-50 to-white dark:border-slate-800 dark:from-indigo-950/40 dark:to-slate-950">
            <div class="mx-auto max-w-6xl px-4 py-12 sm:px-6">
                <p class="text-sm font-semibold text-indigo-600 dark:text-indigo-400">"Documentation"</p>
                <h1 class="mt-2 text-3xl font-semibold tracking-tight sm:text-4xl">"Keyport developer guide"</h1>
                <p class="mt-4 max-w-3xl text-lg text-slate-600 dark:text-slate-300">
                    "How keys work, how to verify them from your API or gateway, how to manage them over HTTP, and how to keep them safe."
                </p>
            </div>
        </div>

        <div class="mx-auto max-w-6xl px-4 py-10 sm:px-6 lg:grid lg:grid-cols-[13rem_minmax(0,1fr)] lg:gap-12">
            <nav
                aria-label="On this page"
                class="mb-10 rounded-lg border border-slate-200 p-4 text-sm lg:sticky lg:top-20 lg:mb-0 lg:max-h-[calc(100vh-6rem)] lg:self-start lg:overflow-y-auto lg:border-0 lg:p-0 dark:border-slate-800"
            >
                <p class="px-2 text-xs font-semibold uppercase tracking-wide text-slate-500 dark:text-slate-400">"On this page"</p>
                <ol class="mt-2 space-y-1">
                    {TOC.iter().map(|&(id, label, subs)| view! {
                        <li>
                            <a href=format!("#{id}") class=TOC_LINK>{label}</a>
                            <ol class="mb-2 ml-2 hidden border-l border-slate-200 pl-2 lg:block dark:border-slate-800">
                                {subs.iter().map(|&(id, label)| view! {
                                    <li><a href=format!("#{id}") class=TOC_SUB>{label}</a></li>
                                }).collect_view()}
                            </ol>
                        </li>
                    }).collect_view()}
                </ol>
            </nav>

            <article class="min-w-0 max-w-3xl space-y-16">
                <KeysSection />
                <VerifySection />
                <ForwardAuthSection />
                <ManagementSection />
                <UsageSection />
                <WebhooksSection />
                <SafetySection />
            </article>
        </div>
    }
}

#[component]
fn KeysSection() -> impl IntoView {
    view! {
        <section aria-labelledby="keys" class=SECTION>
            <h2 id="keys" class=H2>"Keys and scopes"</h2>
            <p class=P>
                "A key identifies its owner to an API. Each key belongs to one API, holds some of that API's scopes, and is bound by its owner's plan."
            </p>

            <h3 id="key-format" class=H3>"Key format"</h3>
            <p class=P>
                "Every key is 49 characters long: the prefix " <code class=IC>"kp_"</code>
                ", a 40-character random body, and a 6-character checksum."
            </p>
            <dl class="mt-4 grid gap-3 sm:grid-cols-3">
                {ANATOMY.into_iter().map(|(part, value, detail)| view! {
                    <div class="rounded-lg border border-slate-200 p-4 dark:border-slate-800">
                        <dt class="text-xs font-semibold uppercase tracking-wide text-slate-500 dark:text-slate-400">{part}</dt>
                        <dd class="mt-1 font-mono text-sm text-slate-900 dark:text-slate-100">{value}</dd>
                        <dd class="mt-1 text-xs leading-5 text-slate-600 dark:text-slate-400">{detail}</dd>
                    </div>
                }).collect_view()}
            </dl>
            <p class=P>
                "The checksum lets Keyport refuse a mistyped or truncated key before any lookup, and lets secret scanners tell a Keyport key from random text."
            </p>
            <p class=P>
                "A key is shown once, when it is created or rotated. Keyport stores only its SHA-256 hash and its start ("
                <code class=IC>"kp_"</code>
                " and the next 6 characters), which the portal and the API show so you can recognise the key. A lost key cannot be recovered: rotate it or create a new one."
            </p>

            <h3 id="apis-and-plans" class=H3>"APIs, scopes, versions and plans"</h3>
            <dl class="mt-4 space-y-4">
                {CONCEPTS.into_iter().map(|(term, text)| view! {
                    <div>
                        <dt class="font-medium text-slate-900 dark:text-slate-100">{term}</dt>
                        <dd class="mt-1 leading-7 text-slate-700 dark:text-slate-300">{text}</dd>
                    </div>
                }).collect_view()}
            </dl>

            <h3 id="key-status" class=H3>"Key status"</h3>
            <p class=P>"A key is always in one of these statuses. Only the ones marked Yes pass verification."</p>
            <DocTable caption="Key statuses" head=STATUS_HEAD rows=STATUS_ROWS />
        </section>
    }
}

#[component]
fn VerifySection() -> impl IntoView {
    view! {
        <section aria-labelledby="verify" class=SECTION>
            <h2 id="verify" class=H2>"Verify a key"</h2>
            <p class=P>
                "When a client calls your API with a key, ask Keyport whether to serve the request. Verification answers from memory: no database read for a known key."
            </p>

            <h3 id="verify-request" class=H3>"Request"</h3>
            <p class=P>
                <code class=IC>"POST /v1/keys/verify"</code>
                " with a JSON body of at most 16 KiB. A body that is not a valid request is answered with 400; a larger body with 413."
            </p>
            <CodeBlock code=VERIFY_CURL caption="Request" />
            <DocTable caption="Verification request fields" head=FIELD_HEAD rows=VERIFY_REQUEST_ROWS />

            <h3 id="verify-response" class=H3>"Response"</h3>
            <p class=P>
                "A well-formed request is always answered with HTTP 200, whether the key is valid or not. Serve the request only when "
                <code class=IC>"valid"</code>
                " is true; "
                <code class=IC>"code"</code>
                " says why a key was refused."
            </p>
            <CodeBlock code=VERIFY_RESPONSE caption="Response" />
            <DocTable caption="Verification response fields" head=FIELD_HEAD rows=VERIFY_RESPONSE_ROWS />

            <h3 id="result-codes" class=H3>"Result codes"</h3>
            <p class=P>"Keyport runs its checks in this order and answers with the first that fails."</p>
            <DocTable caption="Verification result codes, in check order" head=CODE_HEAD rows=CODE_ROWS />
        </section>
    }
}

#[component]
fn ForwardAuthSection() -> impl IntoView {
    view! {
        <section aria-labelledby="forward-auth" class=SECTION>
            <h2 id="forward-auth" class=H2>"Forward authentication for gateways"</h2>
            <p class=P>
                "A gateway can ask Keyport before it forwards a request. Send the request, with any method, to "
                <code class=IC>"/v1/auth"</code>
                "; Keyport reads the key from "
                <code class=IC>"Authorization: Bearer <key>"</code>
                " or "
                <code class=IC>"X-API-Key: <key>"</code>
                " and answers with a status the gateway acts on. These optional headers describe the route:"
            </p>
            <DocTable caption="Forward authentication request headers" head=HEADER_HEAD rows=FORWARD_HEADER_ROWS />
            <p role="note" class=NOTE>
                "Set these headers in the gateway configuration, replacing any value the client sent. Otherwise a client could leave out the scopes its key lacks."
            </p>
            <p class=P>
                "Keyport takes the client IP from "
                <code class=IC>"X-Forwarded-For"</code>
                " or "
                <code class=IC>"X-Real-IP"</code>
                " only when the connection comes from a trusted proxy, listed as CIDRs in "
                <code class=IC>"KEYPORT_TRUSTED_PROXIES"</code>
                " (default: loopback). Otherwise it uses the address of the connection. Add your gateway's addresses if it runs on another host, or IP allowlists will see the gateway instead of the client."
            </p>

            <h3 id="forward-auth-statuses" class=H3>"Status codes"</h3>
            <DocTable caption="Forward authentication responses" head=FORWARD_STATUS_HEAD rows=FORWARD_STATUS_ROWS />
            <p class=P>
                "Every answer other than 200 carries the result code in "
                <code class=IC>"X-Keyport-Code"</code>
                "."
            </p>

            <h3 id="nginx" class=H3>"nginx"</h3>
            <p class=P>
                "With "
                <code class=IC>"auth_request"</code>
                ", nginx makes a subrequest to Keyport for every request and forwards the request only if Keyport answers 200."
            </p>
            <CodeBlock code=NGINX caption="nginx.conf" />
            <p class=P>
                "nginx passes 401 and 403 on to the client, but turns any other status of the subrequest, including 429, into 500."
            </p>

            <h3 id="traefik" class=H3>"Traefik"</h3>
            <p class=P>
                "Attach a ForwardAuth middleware to your API's routers. A headers middleware placed before it sets the API and scopes of the route."
            </p>
            <CodeBlock code=TRAEFIK caption="dynamic.yml" />

            <h3 id="envoy" class=H3>"Envoy"</h3>
            <p class=P>
                "Configure the ext_authz HTTP filter with an HTTP service that points at Keyport with the path prefix "
                <code class=IC>"/v1/auth"</code>
                ", allow the x-api-key and x-keyport-* request headers through to it, and allow x-keyport-key-id and x-keyport-owner-id back to your upstream."
            </p>
        </section>
    }
}

#[component]
fn ManagementSection() -> impl IntoView {
    view! {
        <section aria-labelledby="management-api" class=SECTION>
            <h2 id="management-api" class=H2>"Management REST API"</h2>
            <p class=P>
                "Everything you can do in the portal, you can do over HTTP with JSON. The OpenAPI 3.1 description is at "
                <a href="/v1/openapi.json" class=LINK>"/v1/openapi.json"</a>
                "."
            </p>

            <h3 id="api-auth" class=H3>"Authentication"</h3>
            <p class=P>
                "Send "
                <code class=IC>"Authorization: Bearer <key>"</code>
                " with a key of the built-in "
                <code class=IC>"keyport"</code>
                " API. Create one in the portal or with the command line. The key acts as its owner, within its scopes:"
            </p>
            <DocTable caption="Scopes of the keyport API" head=SCOPE_HEAD rows=SCOPE_ROWS />
            <p class=P>
                "Send request bodies as JSON with "
                <code class=IC>"Content-Type: application/json"</code>
                ". Times are RFC 3339 in UTC. Lists are paginated: pass the "
                <code class=IC>"next_cursor"</code>
                " of one page as "
                <code class=IC>"?cursor="</code>
                " to get the next; it is null on the last page. The examples below read the base URL and your key from environment variables:"
            </p>
            <CodeBlock code=ENV_SETUP caption="Shell" />

            <h3 id="api-errors" class=H3>"Errors"</h3>
            <p class=P>
                "Errors share one shape. "
                <code class=IC>"code"</code>
                " is stable and meant for programs, "
                <code class=IC>"message"</code>
                " is meant for people, and "
                <code class=IC>"fields"</code>
                " appears on validation errors, keyed by field."
            </p>
            <CodeBlock code=ERROR_EXAMPLE caption="Error" />
            <DocTable caption="Error statuses and codes" head=ERROR_HEAD rows=ERROR_ROWS />

            <h3 id="endpoints" class=H3>"Endpoints"</h3>
            <ul class="mt-4 space-y-10">
                {ENDPOINTS.into_iter().map(|(title, note, snippet)| {
                    let (method, path) = title.split_once(' ').unwrap_or(("", title));
                    view! {
                        <li>
                            <h4 class="flex flex-wrap items-center gap-2 text-sm font-medium">
                                <span class={method_class(method)}>{method}</span>
                                <code class="font-mono text-slate-900 dark:text-slate-100">{path}</code>
                            </h4>
                            <p class="mt-2 text-sm leading-6 text-slate-600 dark:text-slate-400">{note}</p>
                            <CodeBlock code=snippet caption=title />
                        </li>
                    }
                }).collect_view()}
            </ul>

            <h3 id="cli" class=H3>"Command line"</h3>
            <p class=P>
                "On the server, "
                <code class=IC>"keyport keys create"</code>
                " creates a key for a user and prints only the key, so it can go straight into a variable or a secret manager. Use it to create your first key of the "
                <code class=IC>"keyport"</code>
                " API. Run it with the same database settings as "
                <code class=IC>"keyport serve"</code>
                "."
            </p>
            <CodeBlock code=CLI_USAGE caption="Usage" />
            <CodeBlock code=CLI_EXAMPLE caption="Example" />
        </section>
    }
}

#[component]
fn UsageSection() -> impl IntoView {
    view! {
        <section aria-labelledby="usage" class=SECTION>
            <h2 id="usage" class=H2>"Usage and alerts"</h2>
            <p class=P>
                "Every verification is counted per key, per minute and per result code. The counts reach the database every few seconds, then are kept as minutes for 48 hours, hours for 90 days and days for 2 years (operators can change this). Charts pick the coarsest buckets that fit the range, and show UTC times. The dashboard, each key's page and the platform dashboard can export their data as CSV; the "
                <code class=IC>"/v1/usage"</code>
                " endpoints serve the same numbers."
            </p>
            <h3 id="alerts" class=H3>"Alerts"</h3>
            <p class=P>"Every minute, Keyport looks at the last hour of up to 10,000 keys, going on from where it stopped the minute before (so with 100,000 keys each is looked at every 10 minutes), and raises an alert when:"</p>
            <ul class=LIST>
                <li><strong class="font-semibold text-slate-900 dark:text-slate-100">"Traffic spike: "</strong>"at least 100 verifications in the hour and at least 5 times the key's usual hourly traffic (the median of the 24 hours before). Keys less than a day old are skipped."</li>
                <li><strong class="font-semibold text-slate-900 dark:text-slate-100">"Burst of denials: "</strong>"at least 50 IP_NOT_ALLOWED, INSUFFICIENT_SCOPE or RATE_LIMITED answers in the hour, making up at least 20% of the key's traffic: someone is probing with the key, or a client is misconfigured."</li>
                <li><strong class="font-semibold text-slate-900 dark:text-slate-100">"Dormant key used again: "</strong>"traffic on a key, older than 30 days, that was not used in the 30 days before: a forgotten key, possibly leaked."</li>
            </ul>
            <p class=P>"Each rule fires at most once per key every 6 hours. Owners see alerts on their own keys, admins on all; each alert says why it fired, links to the key and can disable it at once. Acknowledge an alert to clear it from the list."</p>
        </section>
    }
}

const WEBHOOK_EVENTS: &[&[&str]] = &[
    &[
        "key.created",
        "A key was created (data: the key, as GET /v1/keys/{id} shows it)",
    ],
    &[
        "key.updated",
        "Its name, scopes, expiry or IP allowlist changed",
    ],
    &["key.rotated", "A key replaced another (data: the new key)"],
    &["key.revoked", "A key was revoked"],
    &["key.disabled / key.enabled", "A key was switched off or on"],
    &[
        "key.expiring",
        "A key expires in 7 days, and again 1 day before",
    ],
    &["key.expired", "A key expired"],
    &["key.leaked", "A key was reported leaked"],
    &[
        "usage.anomaly",
        "An alert fired on a key (data: key, alert)",
    ],
    &[
        "quota.warning / quota.exceeded",
        "A key used 80% of its quota, or all of it (data: key, quota)",
    ],
    &[
        "user.created / user.disabled",
        "Platform-wide endpoints (admins) only",
    ],
    &["webhook.test", "Send test event"],
];

const VERIFY_WEBHOOK: &str = r#"# pip install standardwebhooks
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

hook = Webhook("whsec_...")  # the endpoint's signing secret

def receive(body: bytes, headers: dict):
    try:
        event = hook.verify(body, headers)  # checks webhook-signature and webhook-timestamp
    except WebhookVerificationError:
        return 400
    # event["type"], event["timestamp"], event["data"]; deduplicate on headers["webhook-id"]
    return 204"#;

#[component]
fn WebhooksSection() -> impl IntoView {
    view! {
        <section aria-labelledby="webhooks" class=SECTION>
            <h2 id="webhooks" class=H2>"Webhooks"</h2>
            <p class=P>"Register an endpoint on the "<a href="/webhooks" class=LINK>"Webhooks"</a>" page (or with "<code class=IC>"POST /v1/webhooks"</code>", scope "<code class=IC>"webhooks:write"</code>") and Keyport POSTs a JSON event to it whenever something happens to your keys. Each delivery has a body "<code class=IC>"{\"type\", \"timestamp\", \"data\"}"</code>" and never carries a key's plaintext or hash."</p>
            <h3 id="webhook-events" class=H3>"Events"</h3>
            <DocTable caption="Webhook events" head=&["Event", "When"] rows=WEBHOOK_EVENTS />
            <h3 id="webhook-signatures" class=H3>"Verifying signatures"</h3>
            <p class=P>"Deliveries are signed the Standard Webhooks way: headers "<code class=IC>"webhook-id"</code>", "<code class=IC>"webhook-timestamp"</code>" and "<code class=IC>"webhook-signature"</code>" ("<code class=IC>"v1,"</code>" + base64 HMAC-SHA256 of id.timestamp.body, keyed with the secret). Use any Standard Webhooks or Svix library. After \"Rotate secret\", deliveries carry the old and the new signature for 24 hours."</p>
            <CodeBlock code=VERIFY_WEBHOOK caption="receiver.py" />
            <h3 id="webhook-retries" class=H3>"Retries"</h3>
            <p class=P>"Answer with any 2xx within 10 seconds. Anything else is retried after 5 s, 1 min, 10 min, 1 h, 6 h and 24 h, with the same webhook-id (deliveries are at least once: deduplicate on it). Redirects are not followed. An endpoint whose deliveries all fail for a day is disabled and you are told; enable it again once it works. Endpoints must be public addresses: loopback, private and cloud metadata addresses are refused."</p>
        </section>
    }
}

const SCAN_HOOK: &str = r#"#!/bin/sh
# Refuse commits that carry a Keyport key.
exec keyport scan $(git diff --cached --name-only --diff-filter=ACM)"#;

#[component]
fn SafetySection() -> impl IntoView {
    view! {
        <section aria-labelledby="key-safety" class=SECTION>
            <h2 id="key-safety" class=H2>"Keeping keys safe"</h2>
            <ul class=LIST>
                <li>
                    <strong class="font-semibold text-slate-900 dark:text-slate-100">"Keep keys out of code. "</strong>
                    "Load them from environment variables or a secret manager. Never commit them to source control, and never put them in client-side code such as web pages or mobile apps, where anyone can read them."
                </li>
                <li>
                    <strong class="font-semibold text-slate-900 dark:text-slate-100">"Grant the fewest scopes. "</strong>
                    "Give each key only the scopes its job needs, and give each service its own key, so you can revoke one without affecting the others."
                </li>
                <li>
                    <strong class="font-semibold text-slate-900 dark:text-slate-100">"Restrict by IP. "</strong>
                    "Where callers have fixed addresses, set an IP allowlist of addresses or CIDR ranges."
                </li>
                <li>
                    <strong class="font-semibold text-slate-900 dark:text-slate-100">"Set an expiry. "</strong>
                    "A key that expires limits the harm of a leak nobody noticed. Keyport marks a key as expiring soon 7 days ahead."
                </li>
                <li>
                    <strong class="font-semibold text-slate-900 dark:text-slate-100">"Rotate regularly. "</strong>
                    "Rotate with a grace period long enough to deploy the new key; the old key keeps working until the period ends, then expires."
                </li>
            </ul>

            <h3 id="leaked-keys" class=H3>"If a key leaks"</h3>
            <ol class="mt-4 list-decimal space-y-2 pl-5 leading-7 text-slate-700 marker:text-slate-400 dark:text-slate-300">
                <li>
                    "Revoke it at once, in the portal or with "
                    <code class=IC>"POST /v1/keys/{id}/revoke"</code>
                    ". Revocation takes effect immediately. Do not rotate a leaked key with a grace period: it would keep working."
                </li>
                <li>"Create a new key with the same scopes and deploy it."</li>
                <li>"Check the audit log and the key's usage for requests you do not recognise."</li>
            </ol>
            <p class=P>
                "Leaked keys are easy to find: the "
                <code class=IC>"kp_"</code>
                " prefix and the checksum let secret scanners match Keyport keys with few false positives. To teach a scanner, use the pattern "
                <code class=IC>"kp_[0-9A-Za-z]{46}"</code>
                "."
            </p>
            <h3 id="leak-reports" class=H3>"Leak reports and scanning"</h3>
            <p class=P>"Secret-scanning partners (GitHub's format) post the tokens they find to "<code class=IC>"POST /v1/leaks"</code>", signed with ECDSA P-256; admins can post with their management key. Every live Keyport key among them is revoked at once (or disabled, if the administrator chose so), its owner gets an alert and an email, and "<code class=IC>"key.leaked"</code>" goes to webhooks. Admins see every report on "<a href="/admin/leaks" class=LINK>"Leak reports"</a>"."</p>
            <p class=P>"Catch keys before they leave: "<code class=IC>"keyport scan"</code>" finds Keyport keys in a tree (respecting .gitignore) by their checksum, offline, and exits 1 when it finds one."</p>
            <CodeBlock code=SCAN_HOOK caption=".git/hooks/pre-commit" />
        </section>
    }
}
