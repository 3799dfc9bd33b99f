//! `/`: what Keyport is and what it does, for a first-time visitor.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::icons::Check;

const FEATURES: [(&str, &str); 6] = [
    (
        "Self-service keys",
        "Developers sign up, create keys scoped to the APIs and permissions they need, and see each key exactly once.",
    ),
    (
        "Rotation without downtime",
        "Rotate a key and keep the old one working for a grace period you choose; revoke takes effect at once.",
    ),
    (
        "Usage you can read",
        "Per-key charts of every verification by outcome, plus warnings about expiring, idle or misbehaving keys.",
    ),
    (
        "Plans and limits",
        "Admins register APIs, scopes, versions and plans with rate limits and quotas that developers cannot raise.",
    ),
    (
        "A fast hot path",
        "Verification answers from memory: no database read for a known key, no write per request.",
    ),
    (
        "Audited by default",
        "Every action on a key and every sign-in is recorded, for developers to see their own and admins to see all.",
    ),
];

const SECURITY: [&str; 5] = [
    "Keys hold 240 random bits, carry a checksum so leaks can be spotted, and are stored only as SHA-256.",
    "Passwords are hashed with argon2id; two-factor sign-in with an authenticator app is required.",
    "Sessions expire when idle, can be ended from any device, and are renewed at sign-in.",
    "Another user's key answers 404, never 403: ids do not leak.",
    "Built to OWASP ASVS level 2.",
];

#[component]
pub fn Landing() -> impl IntoView {
    view! {
        <Title text="" />
        <section class="border-b border-slate-200 bg-gradient-to-b from-indigo-50 to-white dark:border-slate-800 dark:from-indigo-950/40 dark:to-slate-950">
            <div class="mx-auto grid max-w-6xl gap-12 px-4 py-20 sm:px-6 lg:grid-cols-2 lg:items-center">
                <div>
                    <p class="text-sm font-semibold text-indigo-600 dark:text-indigo-400">"Self-hosted developer portal"</p>
                    <h1 class="mt-3 text-4xl font-semibold tracking-tight sm:text-5xl">
                        "Keyport: API keys your developers manage themselves"
                    </h1>
                    <p class="mt-6 text-lg text-slate-600 dark:text-slate-300">
                        "Keyport issues, scopes, rotates and revokes API keys, shows how each key is used, "
                        "and answers your gateway's question on every request: is this key valid, for this scope, "
                        "from this address, within its limits?"
                    </p>
                    <ul class="mt-8 flex flex-wrap gap-x-6 gap-y-2 text-sm text-slate-600 dark:text-slate-300">
                        <li class="flex items-center gap-2"><Check />"Runs on one SQLite file"</li>
                        <li class="flex items-center gap-2"><Check />"Scales out on PostgreSQL"</li>
                        <li class="flex items-center gap-2"><Check />"nginx, Traefik and Envoy"</li>
                    </ul>
                </div>
                <figure class="overflow-hidden rounded-xl border border-slate-200 bg-slate-900 shadow-lg dark:border-slate-700">
                    <figcaption class="border-b border-slate-700 px-4 py-2 text-xs text-slate-400">
                        "Verify a key from your API"
                    </figcaption>
                    <pre class="overflow-x-auto p-4 text-sm leading-relaxed text-slate-100"><code>
    "$ curl -s https://keyport.example.com/v1/keys/verify \\
    -d '{\"key\": \"kp_AbC123…\", \"scopes\": [\"orders:read\"]}'
{
  \"valid\": true,
  \"code\": \"VALID\",
  \"ratelimit\": { \"limit\": 100, \"remaining\": 99 }
}"
                    </code></pre>
                </figure>
            </div>
        </section>

        <section id="features" class="mx-auto max-w-6xl scroll-mt-16 px-4 py-16 sm:px-6">
            <h2 class="text-2xl font-semibold tracking-tight">"Everything a key needs, from creation to revocation"</h2>
            <div class="mt-8 grid gap-6 sm:grid-cols-2 lg:grid-cols-3">
                {FEATURES.map(|(title, text)| view! {
                    <div class="rounded-lg border border-slate-200 p-5 dark:border-slate-800">
                        <h3 class="font-medium">{title}</h3>
                        <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">{text}</p>
                    </div>
                })}
            </div>
        </section>

        <section id="gateways" class="scroll-mt-16 border-y border-slate-200 bg-slate-50 dark:border-slate-800 dark:bg-slate-900/40">
            <div class="mx-auto grid max-w-6xl gap-8 px-4 py-16 sm:px-6 lg:grid-cols-3">
                <div>
                    <h2 class="text-2xl font-semibold tracking-tight">"In front of any API"</h2>
                    <p class="mt-3 text-slate-600 dark:text-slate-400">
                        "Call the JSON verify endpoint from your code, or let your gateway ask Keyport before it forwards a request."
                    </p>
                </div>
                <dl class="grid gap-6 sm:grid-cols-2 lg:col-span-2">
                    <div>
                        <dt class="font-mono text-sm font-medium">"POST /v1/keys/verify"</dt>
                        <dd class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                            "One JSON answer with the outcome, the key's owner and scopes, and its remaining rate limit and quota."
                        </dd>
                    </div>
                    <div>
                        <dt class="font-mono text-sm font-medium">"/v1/auth"</dt>
                        <dd class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                            "Forward authentication for nginx auth_request, Traefik ForwardAuth and Envoy: 200, 401, 403 or 429 with Retry-After."
                        </dd>
                    </div>
                </dl>
            </div>
        </section>

        <section id="security" class="mx-auto max-w-6xl scroll-mt-16 px-4 py-16 sm:px-6">
            <h2 class="text-2xl font-semibold tracking-tight">"Secure by construction"</h2>
            <ul class="mt-6 grid gap-3 sm:grid-cols-2">
                {SECURITY.map(|line| view! {
                    <li class="flex gap-3 text-sm text-slate-600 dark:text-slate-300"><Check />{line}</li>
                })}
            </ul>
        </section>
    }
}
