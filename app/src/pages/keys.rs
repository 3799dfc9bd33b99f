//! `/keys`, `/keys/new` and `/keys/:id`: list, create (shown once), detail with rotate, revoke,
//! disable. Every form is plain HTML that works before (or without) WASM.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        chart::{RangePicker, UsageChart, thousands},
        copy_button::CopyButton,
        form::{Alert, INPUT, SECONDARY},
        local_time::{MaybeTime, Time},
        ui::*,
    },
    pages::not_found::NotFound,
    session::{self, AuditRow, Flash, KeyRow, PageData},
};

fn encode(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '@' => c.to_string(),
            ' ' => "+".into(),
            c => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
        })
        .collect()
}

#[component]
pub fn KeysList() -> impl IntoView {
    let view = session::current();
    let PageData::Keys {
        rows,
        filter,
        apis,
        all_users,
        page,
        pages,
        total,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    let filtered = !(filter.q.is_empty()
        && filter.api.is_empty()
        && filter.status.is_empty()
        && filter.owner.is_empty());
    let link_filter = filter.clone();
    let link = Callback::new(move |p: u64| {
        let f = &link_filter;
        format!(
            "/keys?page={p}&q={}&api={}&status={}&sort={}&owner={}",
            encode(&f.q),
            encode(&f.api),
            encode(&f.status),
            encode(&f.sort),
            encode(&f.owner)
        )
    });
    let subtitle = format!(
        "{total} key{}{}",
        if total == 1 { "" } else { "s" },
        if all_users { " across all users" } else { "" }
    );
    let statuses = [
        ("", "Any status"),
        ("active", "Active"),
        ("expiring_soon", "Expiring soon"),
        ("rotating", "Rotating"),
        ("expired", "Expired"),
        ("disabled", "Disabled"),
        ("revoked", "Revoked"),
    ];
    let sorts = [
        ("newest", "Newest first"),
        ("oldest", "Oldest first"),
        ("name", "Name"),
        ("expires", "Expires soonest"),
        ("last_used", "Recently used"),
    ];
    view! {
        <Title text="API keys" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="API keys".into() subtitle=subtitle>
                <a href="/hygiene" class=SECONDARY>"Key hygiene"</a>
                <a href="/keys/new" class=BUTTON>"Create key"</a>
            </PageHeader>
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            <form method="get" action="/keys" role="search" aria-label="Filter keys" class="grid gap-3 rounded-xl border border-slate-200 p-4 sm:grid-cols-2 lg:grid-cols-6 dark:border-slate-800">
                <div class="lg:col-span-2">
                    <label for="keys-q" class=LABEL>"Search"</label>
                    <input id="keys-q" type="search" name="q" value=filter.q.clone() placeholder="Name or kp_ start" class=INPUT />
                </div>
                <div>
                    <label for="keys-api" class=LABEL>"API"</label>
                    <select id="keys-api" name="api" class=INPUT>
                        <option value="">"All APIs"</option>
                        {apis.into_iter().map(|a| { let selected = a == filter.api; view! { <option value=a.clone() selected=selected>{a.clone()}</option> } }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="keys-status" class=LABEL>"Status"</label>
                    <select id="keys-status" name="status" class=INPUT>
                        {statuses.into_iter().map(|(v, l)| view! { <option value=v selected=v == filter.status>{l}</option> }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="keys-sort" class=LABEL>"Sort"</label>
                    <select id="keys-sort" name="sort" class=INPUT>
                        {sorts.into_iter().map(|(v, l)| view! { <option value=v selected=v == filter.sort>{l}</option> }).collect_view()}
                    </select>
                </div>
                {all_users.then(|| view! {
                    <div>
                        <label for="keys-owner" class=LABEL>"Owner"</label>
                        <input id="keys-owner" type="search" name="owner" value=filter.owner.clone() placeholder="Email or usr_ id" class=INPUT />
                    </div>
                })}
                <div class="flex items-end gap-2">
                    <button type="submit" class=SECONDARY>"Apply"</button>
                    {filtered.then(|| view! { <a href="/keys" class="px-2 py-2 text-sm text-slate-600 hover:underline dark:text-slate-400">"Clear"</a> })}
                </div>
            </form>
            {if rows.is_empty() && !filtered {
                view! { <EmptyState title="No API keys yet"
                    text="Create a key for each app or environment that calls an API, with only the scopes it needs. You will see the key once, right after creating it."
                    action=("/keys/new", "Create your first key") /> }.into_any()
            } else if rows.is_empty() {
                view! { <EmptyState title="No keys match these filters" text="Try another status or API, or clear the filters." /> }.into_any()
            } else {
                let cards = rows.clone();
                view! {
                    // Phones: one card per key with what matters most; the table from `sm` up.
                    <ul class="space-y-3 sm:hidden" aria-label="Your API keys">
                        {cards.into_iter().map(|k| view! { <KeyCard key=k all_users /> }).collect_view()}
                    </ul>
                    <div class=format!("{TABLE_WRAP} hidden sm:block")>
                        <table class=TABLE>
                            <caption class="sr-only">"Your API keys"</caption>
                            <thead class=THEAD>
                                <tr>
                                    <th scope="col" class=TH>"Name"</th>
                                    <th scope="col" class=TH>"Key"</th>
                                    <th scope="col" class=TH>"API and scopes"</th>
                                    {all_users.then(|| view! { <th scope="col" class=TH>"Owner"</th> })}
                                    <th scope="col" class=TH>"Created"</th>
                                    <th scope="col" class=TH>"Expires"</th>
                                    <th scope="col" class=TH>"Last used"</th>
                                    <th scope="col" class=TH>"Status"</th>
                                </tr>
                            </thead>
                            <tbody class=TBODY>
                                {rows.into_iter().map(|k| view! { <KeyListRow key=k all_users /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <Pagination page pages link />
        </section>
    }
    .into_any()
}

#[component]
fn KeyListRow(key: KeyRow, all_users: bool) -> impl IntoView {
    view! {
        <tr class="hover:bg-slate-50 dark:hover:bg-slate-900/60">
            <td class="px-4 py-3 font-medium"><a class=LINK href=format!("/keys/{}", key.id)>{key.name.clone()}</a></td>
            <td class="px-4 py-3 font-mono text-xs whitespace-nowrap">{format!("{}…", key.start)}</td>
            <td class="px-4 py-3">
                <span class="font-medium">{key.api.clone()}</span>
                <span class="block text-xs text-slate-500 dark:text-slate-400">{key.scopes.join(", ")}</span>
            </td>
            {all_users.then(|| view! { <td class="px-4 py-3">{key.owner_email.clone()}</td> })}
            <td class="px-4 py-3 whitespace-nowrap"><Time utc=key.created_at.clone() /></td>
            <td class="px-4 py-3 whitespace-nowrap"><MaybeTime utc=key.expires_at.clone() none="Never" /></td>
            <td class="px-4 py-3 whitespace-nowrap"><MaybeTime utc=key.last_used_at.clone() none="Never" /></td>
            <td class="px-4 py-3"><KeyStatusLabel key=key.clone() /></td>
        </tr>
    }
}

/// A key's status badge, and for a rotating key when its grace period ends (in local time).
#[component]
fn KeyStatusLabel(key: KeyRow) -> impl IntoView {
    view! {
        <StatusBadge status=key.status.clone() label=key.status_label.clone() />
        {key.rotating_until.map(|until| view! {
            <span class="mt-1 block whitespace-nowrap text-xs text-slate-500 dark:text-slate-400">"until "<Time utc=until /></span>
        })}
    }
}

/// A key on a phone: name, start and status on top, then its API and main dates.
#[component]
fn KeyCard(key: KeyRow, all_users: bool) -> impl IntoView {
    view! {
        <li class="rounded-xl border border-slate-200 p-4 text-sm dark:border-slate-800">
            <div class="flex items-start justify-between gap-3">
                <div class="min-w-0">
                    <a class=format!("{LINK} block truncate font-medium") href=format!("/keys/{}", key.id)>{key.name.clone()}</a>
                    <span class="font-mono text-xs text-slate-600 dark:text-slate-400">{format!("{}…", key.start)}</span>
                </div>
                <div class="shrink-0 text-right"><KeyStatusLabel key=key.clone() /></div>
            </div>
            <p class="mt-2 text-slate-700 dark:text-slate-300">
                <span class="font-medium">{key.api.clone()}</span>
                {(!key.scopes.is_empty()).then(|| format!(" · {}", key.scopes.join(", ")))}
            </p>
            {all_users.then(|| view! { <p class="text-xs text-slate-600 dark:text-slate-400">{key.owner_email.clone()}</p> })}
            <dl class="mt-2 grid grid-cols-3 gap-2 text-xs">
                <div><dt class="text-slate-500 dark:text-slate-400">"Created"</dt><dd><Time utc=key.created_at.clone() /></dd></div>
                <div><dt class="text-slate-500 dark:text-slate-400">"Expires"</dt><dd><MaybeTime utc=key.expires_at.clone() none="Never" /></dd></div>
                <div><dt class="text-slate-500 dark:text-slate-400">"Last used"</dt><dd><MaybeTime utc=key.last_used_at.clone() none="Never" /></dd></div>
            </dl>
        </li>
    }
}

#[component]
pub fn NewKeyPage() -> impl IntoView {
    let view = session::current();
    let PageData::NewKey {
        apis,
        selected,
        plan,
        needs_step_up,
        is_admin,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    view! {
        <Title text="Create a key" />
        <section class="mx-auto max-w-3xl space-y-6 px-4 py-10 sm:px-6">
            <nav aria-label="Breadcrumb" class="text-sm"><a href="/keys" class=LINK>"API keys"</a>" / New"</nav>
            {match selected {
                None => view! {
                    <PageHeader title="Create a key".into() subtitle="Step 1 of 2: which API will this key call?" />
                    <Alert message=flash.error.clone() />
                    {if apis.is_empty() {
                        view! { <EmptyState title="No APIs yet" text="An admin has to register an API before keys can be created for it." /> }.into_any()
                    } else {
                        view! {
                            <ul class="grid gap-3 sm:grid-cols-2">
                                {apis.into_iter().map(|a| view! {
                                    <li>
                                        <a href=format!("/keys/new?api={}", encode(&a.slug)) class="block h-full rounded-xl border border-slate-200 p-4 hover:border-indigo-400 hover:bg-indigo-50/40 focus-visible:outline-2 focus-visible:outline-indigo-600 dark:border-slate-800 dark:hover:bg-indigo-950/30">
                                            <span class="font-medium">{a.name.clone()}</span>
                                            <span class="ml-2 font-mono text-xs text-slate-500">{a.slug.clone()}</span>
                                            <span class="mt-1 block text-sm text-slate-600 dark:text-slate-400">{a.description.clone()}</span>
                                            <span class="mt-2 block text-xs text-slate-500">{format!("{} scope{}", a.scopes.len(), if a.scopes.len() == 1 { "" } else { "s" })}</span>
                                        </a>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                }.into_any(),
                Some(api) => view! { <KeyForm api plan flash needs_step_up is_admin /> }.into_any(),
            }}
        </section>
    }
    .into_any()
}

#[component]
fn KeyForm(
    api: session::ApiView,
    plan: session::PlanView,
    flash: Flash,
    needs_step_up: bool,
    is_admin: bool,
) -> impl IntoView {
    let chosen = flash.values_of("scopes");
    let refilled = !flash.values.is_empty();
    let expires = flash.value("expires").unwrap_or_else(|| "90".into());
    let never_allowed = is_admin || plan.max_lifetime_days.is_none();
    let max_days = plan.max_lifetime_days.filter(|_| !is_admin);
    let presets: Vec<(&str, &str)> = [
        ("7", "7 days"),
        ("30", "30 days"),
        ("90", "90 days"),
        ("365", "1 year"),
    ]
    .into_iter()
    .filter(|(d, _)| max_days.is_none_or(|m| d.parse::<u32>().unwrap_or(0) <= m))
    .collect();
    let field_error = |f: &str| flash.field_error(f);
    let limits_hint = if is_admin {
        "Leave empty to use the owner's plan. As an admin you may set any limit.".to_owned()
    } else {
        format!(
            "Leave empty to use your plan ({}): {}. A key can only lower these limits.",
            plan.name, plan.summary
        )
    };
    view! {
        <PageHeader title=format!("Create a key for {}", api.name) subtitle="Step 2 of 2: name it, pick its scopes and how long it lives." />
        <Alert message=flash.error.clone() />
        <form method="post" action="/keys/new" class="space-y-6">
            <input type="hidden" name="api" value=api.slug.clone() />
            <div class=CARD>
                <div class="space-y-5">
                    <div>
                        <label for="key-name" class=LABEL>"Name"</label>
                        <input id="key-name" name="name" required=true maxlength="100" autofocus=true class=INPUT
                            value=flash.value("name") placeholder="e.g. checkout-service production"
                            aria-invalid=field_error("name").map(|_| "true") aria-describedby="key-name-hint" />
                        <p id="key-name-hint" class=HINT>"Where the key is used, so you recognise it later."</p>
                        {field_error("name").map(|e| view! { <p class=ERROR>{e}</p> })}
                    </div>
                    <fieldset>
                        <legend class=LABEL>"Scopes"</legend>
                        <p class=HINT>"Grant only what this key needs. At least one."</p>
                        <div class="mt-2 grid gap-2 sm:grid-cols-2">
                            {api.scopes.iter().enumerate().map(|(i, (name, description))| {
                                let checked = if refilled { chosen.contains(name) } else { api.scopes.len() == 1 };
                                view! {
                                    <label for=format!("scope-{i}") class="flex items-start gap-2 rounded-md border border-slate-200 p-3 text-sm has-[:checked]:border-indigo-400 has-[:checked]:bg-indigo-50/50 dark:border-slate-700 dark:has-[:checked]:bg-indigo-950/30">
                                        <input id=format!("scope-{i}") type="checkbox" name="scopes" value=name.clone() checked=checked class="mt-0.5 size-4 rounded border-slate-300" />
                                        <span><span class="font-mono font-medium">{name.clone()}</span>
                                        <span class="block text-xs text-slate-500 dark:text-slate-400">{description.clone()}</span></span>
                                    </label>
                                }
                            }).collect_view()}
                        </div>
                        {field_error("scopes").map(|e| view! { <p class=ERROR>{e}</p> })}
                    </fieldset>
                    <fieldset>
                        <legend class=LABEL>"Expires"</legend>
                        <div class="mt-2 flex flex-wrap gap-2">
                            {presets.into_iter().map(|(v, l)| view! {
                                <label class="flex items-center gap-2 rounded-md border border-slate-200 px-3 py-2 text-sm has-[:checked]:border-indigo-400 dark:border-slate-700">
                                    <input type="radio" name="expires" value=v checked=expires == v class="size-4" />{l}
                                </label>
                            }).collect_view()}
                            <label class="flex items-center gap-2 rounded-md border border-slate-200 px-3 py-2 text-sm has-[:checked]:border-indigo-400 dark:border-slate-700">
                                <input type="radio" name="expires" value="date" checked=expires == "date" class="size-4" />"On a date"
                            </label>
                            {never_allowed.then(|| view! {
                                <label class="flex items-center gap-2 rounded-md border border-slate-200 px-3 py-2 text-sm has-[:checked]:border-indigo-400 dark:border-slate-700">
                                    <input type="radio" name="expires" value="never" checked=expires == "never" class="size-4" />"Never"
                                </label>
                            })}
                        </div>
                        <div class="mt-2 max-w-xs">
                            <label for="key-expires-on" class="sr-only">"Expiry date"</label>
                            <input id="key-expires-on" type="date" name="expires_on" value=flash.value("expires_on") class=INPUT aria-describedby="key-expires-hint" />
                        </div>
                        <p id="key-expires-hint" class=HINT>{match max_days {
                            Some(d) => format!("Your plan allows keys to live up to {d} days. The date option expires the key at the end of that day (UTC)."),
                            None => "The date option expires the key at the end of that day (UTC).".to_owned(),
                        }}</p>
                        {field_error("expires_at").map(|e| view! { <p class=ERROR>{e}</p> })}
                    </fieldset>
                </div>
            </div>
            <details class=CARD open=refilled && (field_error("ip_allowlist").is_some() || field_error("ratelimit").is_some() || field_error("quota").is_some())>
                <summary class="cursor-pointer text-sm font-medium">"Restrictions (optional): IP allowlist, rate limit, quota"</summary>
                <div class="mt-4 space-y-5">
                    <div>
                        <label for="key-ips" class=LABEL>"IP allowlist"</label>
                        <textarea id="key-ips" name="ip_allowlist" rows="3" class=format!("{INPUT} font-mono") placeholder="203.0.113.7\n10.0.0.0/8\n2001:db8::/32"
                            aria-describedby="key-ips-hint">{flash.value("ip_allowlist").unwrap_or_default()}</textarea>
                        <p id="key-ips-hint" class=HINT>"IPv4 or IPv6 addresses and CIDR ranges, one per line. Empty: any address."</p>
                        {field_error("ip_allowlist").map(|e| view! { <p class=ERROR>{e}</p> })}
                    </div>
                    <div class="grid gap-4 sm:grid-cols-2">
                        <div>
                            <label for="key-rate" class=LABEL>"Rate limit"</label>
                            <div class="flex gap-2">
                                <input id="key-rate" name="rate_limit" type="number" min="1" inputmode="numeric" class=INPUT value=flash.value("rate_limit") placeholder="requests" />
                                <label for="key-rate-period" class="sr-only">"Rate limit period"</label>
                                <select id="key-rate-period" name="rate_period_s" class=INPUT>
                                    <option value="1">"per second"</option>
                                    <option value="60">"per minute"</option>
                                    <option value="3600">"per hour"</option>
                                </select>
                            </div>
                            {field_error("ratelimit").or(field_error("rate_limit")).map(|e| view! { <p class=ERROR>{e}</p> })}
                        </div>
                        <div>
                            <label for="key-quota" class=LABEL>"Quota"</label>
                            <div class="flex gap-2">
                                <input id="key-quota" name="quota_limit" type="number" min="1" inputmode="numeric" class=INPUT value=flash.value("quota_limit") placeholder="requests" />
                                <label for="key-quota-period" class="sr-only">"Quota period"</label>
                                <select id="key-quota-period" name="quota_period" class=INPUT>
                                    <option value="day">"per day"</option>
                                    <option value="month">"per month"</option>
                                </select>
                            </div>
                            {field_error("quota").or(field_error("quota_limit")).map(|e| view! { <p class=ERROR>{e}</p> })}
                        </div>
                    </div>
                    <p class=HINT>{limits_hint}</p>
                </div>
            </details>
            {needs_step_up.then(|| view! { <div class=CARD><StepUpField error=field_error("code") /></div> })}
            <div class="flex flex-wrap items-center gap-3">
                <button type="submit" class=BUTTON>"Create key"</button>
                <a href="/keys/new" class=SECONDARY>"Choose another API"</a>
            </div>
        </form>
    }
}

#[component]
pub fn KeyDetail() -> impl IntoView {
    let view = session::current();
    let PageData::KeyDetail {
        key,
        plaintext,
        events,
        needs_step_up,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    let k = *key;
    let row = k.row.clone();
    let can = |action: &str| k.actions.iter().any(|a| a == action);
    let (editable, usable, rotatable) = (can("edit"), can("toggle"), can("rotate"));
    let revoked = !can("revoke");
    let action = format!("/keys/{}/action", row.id);
    let code_error = flash.field_error("code");
    let action0 = action.clone();
    let action1 = action.clone();
    let action2 = action.clone();
    let action3 = action.clone();
    let action4 = action.clone();
    let action5 = action.clone();
    let (code_error1, code_error2) = (code_error.clone(), code_error.clone());
    let (name1, name2, start2) = (row.name.clone(), row.name.clone(), row.start.clone());

    view! {
        <Title text=format!("Key {}", row.name) />
        <section class="mx-auto max-w-5xl space-y-6 px-4 py-10 sm:px-6">
            <nav aria-label="Breadcrumb" class="text-sm"><a href="/keys" class=LINK>"API keys"</a>{format!(" / {}", row.name)}</nav>
            <div class="flex flex-wrap items-center gap-3">
                <h1 class="text-2xl font-semibold tracking-tight">{row.name.clone()}</h1>
                <div><KeyStatusLabel key=row.clone() /></div>
            </div>
            {plaintext.map(|p| view! { <OneTimeKey plaintext=p /> })}
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            <div class="grid gap-6 lg:grid-cols-3">
                <div class=format!("{CARD} lg:col-span-2")>
                    <h2 class="text-lg font-medium">"Details"</h2>
                    <dl class="mt-4 grid grid-cols-1 gap-x-6 gap-y-3 text-sm sm:grid-cols-2">
                        <Item term="Key" value=format!("{}…", row.start) mono=true />
                        <Item term="Id" value=row.id.clone() mono=true />
                        <Item term="API" value=row.api.clone() />
                        <Item term="Scopes" value=row.scopes.join(", ") mono=true />
                        <Item term="Owner" value=row.owner_email.clone() />
                        <TimeItem term="Created" utc=Some(row.created_at.clone()) />
                        <TimeItem term="Expires" utc=row.expires_at.clone() />
                        <TimeItem term="Last used" utc=row.last_used_at.clone() />
                        <Item term="Rate limit" value=k.rate_limit.clone() />
                        <Item term="Quota" value=k.quota.clone() />
                        <Item term="IP allowlist" value=if k.ip_allowlist.is_empty() { "Any address".to_owned() } else { k.ip_allowlist.join(", ") } mono=!k.ip_allowlist.is_empty() />
                        {k.replaces.clone().map(|r| view! { <div><dt class="text-slate-500 dark:text-slate-400">"Replaces"</dt><dd><a class=format!("{LINK} font-mono") href=format!("/keys/{r}")>{r.clone()}</a></dd></div> })}
                        {k.replaced_by.clone().map(|r| view! { <div><dt class="text-slate-500 dark:text-slate-400">"Replaced by"</dt><dd><a class=format!("{LINK} font-mono") href=format!("/keys/{r}")>{r.clone()}</a></dd></div> })}
                        {k.revoked_at.clone().map(|at| view! { <Item term="Revoked (UTC)" value=format!("{at}{}", k.revoke_reason.clone().map(|r| format!(" — {r}")).unwrap_or_default()) /> })}
                    </dl>
                </div>
                <div class=format!("{CARD} space-y-4")>
                    <h2 class="text-lg font-medium">"Actions"</h2>
                    {revoked.then(|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"This key is revoked for good. Create a new key if you need one."</p> })}
                    {editable.then(|| view! {
                        <form method="post" action=action0.clone() class="space-y-2">
                            <input type="hidden" name="action" value="rename" />
                            <label for="rename" class=LABEL>"Name"</label>
                            <div class="flex gap-2">
                                <input id="rename" name="name" value=row.name.clone() required=true maxlength="100" class=INPUT />
                                <button type="submit" class=SECONDARY>"Save"</button>
                            </div>
                        </form>
                    })}
                    {rotatable.then(|| view! {
                        <Confirm label="Rotate key…".into()>
                            <form method="post" action=action1.clone() class="space-y-3">
                                <input type="hidden" name="action" value="rotate" />
                                <p class="text-sm">"Creates a new key with the same scopes and limits. You will see the new key once. How long should the old key keep working?"</p>
                                <label for="grace" class=LABEL>"Grace period"</label>
                                <select id="grace" name="grace_period_s" class=INPUT>
                                    <option value="0">"None: stop the old key now"</option>
                                    <option value="3600">"1 hour"</option>
                                    <option value="86400" selected=true>"24 hours"</option>
                                    <option value="604800">"7 days"</option>
                                </select>
                                {needs_step_up.then(|| view! { <StepUpField error=code_error1.clone() id="code-rotate" /> })}
                                <button type="submit" class=BUTTON>"Rotate key"</button>
                            </form>
                        </Confirm>
                    })}
                    {usable.then(|| if k.enabled {
                        view! {
                            <Confirm label="Disable key…".into()>
                                <form method="post" action=action2.clone() class="space-y-3">
                                    <input type="hidden" name="action" value="disable" />
                                    <p class="text-sm">{format!("Disable {}? It stops verifying until you enable it again.", name1)}</p>
                                    <button type="submit" class=DANGER>"Disable key"</button>
                                </form>
                            </Confirm>
                        }.into_any()
                    } else {
                        view! {
                            <form method="post" action=action3.clone()>
                                <input type="hidden" name="action" value="enable" />
                                <button type="submit" class=SECONDARY>"Enable key"</button>
                            </form>
                        }.into_any()
                    })}
                    {(!revoked).then(|| view! {
                        <Confirm label="Revoke key…".into() danger=true>
                            <form method="post" action=action4.clone() class="space-y-3">
                                <input type="hidden" name="action" value="revoke" />
                                <p class="text-sm">{format!("Revoke {} ({}…)? Every request using it fails from now on. This cannot be undone.", name2, start2)}</p>
                                <label for="revoke-reason" class=LABEL>"Reason (optional)"</label>
                                <input id="revoke-reason" name="reason" maxlength="500" class=INPUT placeholder="e.g. leaked in a CI log" />
                                {needs_step_up.then(|| view! { <StepUpField error=code_error2.clone() id="code-revoke" /> })}
                                <button type="submit" class=DANGER>"Revoke key"</button>
                            </form>
                        </Confirm>
                    })}
                </div>
            </div>
            <div class=format!("{CARD} space-y-4")>
                <div class="flex flex-wrap items-center justify-between gap-3">
                    <h2 class="text-lg font-medium">"Usage"</h2>
                    <RangePicker range=k.range.clone() base=format!("/keys/{}", row.id) />
                </div>
                <dl class="grid grid-cols-1 gap-3 text-sm sm:grid-cols-2 lg:grid-cols-4">
                    <div><dt class="text-slate-500 dark:text-slate-400">"Requests in range"</dt><dd class="text-lg font-semibold tabular-nums">{thousands(k.chart.total)}</dd></div>
                    <div><dt class="text-slate-500 dark:text-slate-400">"Rate limit"</dt><dd class="text-lg font-semibold tabular-nums" data-testid="rate-use">{k.rate_use.clone().unwrap_or_else(|| "No limit".into())}</dd></div>
                    <div><dt class="text-slate-500 dark:text-slate-400">"Quota used"</dt><dd class="text-lg font-semibold tabular-nums" data-testid="quota-use">{k.quota_use.clone().unwrap_or_else(|| "No quota".into())}</dd></div>
                    <div><dt class="text-slate-500 dark:text-slate-400">"Last used"</dt><dd class="text-lg font-semibold"><MaybeTime utc=row.last_used_at.clone() none="Never" /></dd></div>
                </dl>
                <UsageChart chart=k.chart.clone() title="Verifications of this key" />
            </div>
            {editable.then(|| view! {
                <div class=CARD>
                    <h2 class="text-lg font-medium">"IP allowlist"</h2>
                    <form method="post" action=action5.clone() class="mt-3 space-y-3">
                        <input type="hidden" name="action" value="allowlist" />
                        <label for="allowlist" class=LABEL>"Addresses and CIDR ranges, one per line (empty: any address)"</label>
                        <textarea id="allowlist" name="ip_allowlist" rows="3" class=format!("{INPUT} font-mono")>{k.ip_allowlist.join("\n")}</textarea>
                        {flash.field_error("ip_allowlist").map(|e| view! { <p class=ERROR>{e}</p> })}
                        // Removing the allowlist frees the key from its network: a fresh code.
                        {(needs_step_up && !k.ip_allowlist.is_empty()).then(|| view! {
                            <div>
                                <label for="allowlist-code" class=LABEL>"Authentication code (to remove the allowlist)"</label>
                                <input id="allowlist-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                                    pattern="[0-9 ]{6,7}" maxlength="7" aria-describedby="allowlist-code-hint" class=INPUT />
                                <p id="allowlist-code-hint" class=HINT>"Needed when the list is emptied or allows every address."</p>
                                {flash.field_error("code").map(|e| view! { <p class=ERROR>{e}</p> })}
                            </div>
                        })}
                        <button type="submit" class=SECONDARY>"Save allowlist"</button>
                    </form>
                </div>
            })}
            <div class=CARD>
                <div class="flex items-center justify-between">
                    <h2 class="text-lg font-medium">"Activity"</h2>
                    <a class=format!("{LINK} text-sm") href=format!("/audit?target={}", row.id)>"Full audit log"</a>
                </div>
                <EventList events />
            </div>
        </section>
    }
    .into_any()
}

/// A time in the details list; "Never" when there is none.
#[component]
fn TimeItem(term: &'static str, utc: Option<String>) -> impl IntoView {
    view! {
        <div>
            <dt class="text-slate-500 dark:text-slate-400">{term}</dt>
            <dd><MaybeTime utc none="Never" /></dd>
        </div>
    }
}

#[component]
fn Item(term: &'static str, value: String, #[prop(optional)] mono: bool) -> impl IntoView {
    view! {
        <div>
            <dt class="text-slate-500 dark:text-slate-400">{term}</dt>
            <dd class=if mono { "break-all font-mono text-xs" } else { "" }>{value}</dd>
        </div>
    }
}

/// The new key, shown this once.
#[component]
fn OneTimeKey(plaintext: String) -> impl IntoView {
    view! {
        <div role="alert" class="space-y-3 rounded-xl border border-amber-300 bg-amber-50 p-5 dark:border-amber-800 dark:bg-amber-950/40">
            <h2 class="font-semibold text-amber-900 dark:text-amber-100">"Copy your new key now"</h2>
            <p class="text-sm text-amber-900 dark:text-amber-200">"This is the only time Keyport shows it: we keep only a hash. Store it in a secret manager or an environment variable, never in source control."</p>
            <div class="flex flex-wrap items-center gap-2">
                <label for="new-key" class="sr-only">"Your new API key"</label>
                <input id="new-key" readonly=true value=plaintext.clone() data-testid="new-key"
                    class="min-w-0 flex-1 rounded-md border border-amber-300 bg-white px-3 py-2 font-mono text-sm dark:border-amber-800 dark:bg-slate-950" />
                <CopyButton text=plaintext label="Copy key".into() />
            </div>
        </div>
    }
}

/// Audit events as a compact list.
#[component]
pub fn EventList(events: Vec<AuditRow>) -> impl IntoView {
    if events.is_empty() {
        return view! { <p class="mt-3 text-sm text-slate-600 dark:text-slate-400">"No activity recorded yet."</p> }.into_any();
    }
    view! {
        <ol class="mt-3 divide-y divide-slate-200 text-sm dark:divide-slate-800">
            {events.into_iter().map(|e| view! {
                <li class="flex flex-wrap gap-x-3 py-2">
                    <span class="font-mono text-xs font-medium">{e.action.clone()}</span>
                    <span class="text-slate-600 dark:text-slate-400">{format!("by {} · ", e.actor)}<Time utc=e.at.clone() />{format!(" · {}", e.ip)}</span>
                    {(!e.details.is_empty()).then(|| view! { <span class="w-full text-xs text-slate-500">{e.details.clone()}</span> })}
                </li>
            }).collect_view()}
        </ol>
    }
    .into_any()
}
