//! The developer's dashboard (usage of their own keys) and the admin's platform dashboard.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        chart::{RangePicker, UsageChart, thousands},
        form::Alert,
        local_time::{MaybeTime, Time},
        ui::{CARD, LINK, Notice, TABLE, TABLE_WRAP, TBODY, TH, THEAD},
    },
    pages::{alerts::AlertCard, not_found::NotFound},
    session::{self, KeyUsageRow, OutboxView, PageData, RankedRow},
};

fn rate(denied: u64, total: u64) -> String {
    if total == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}%", denied as f64 * 100.0 / total as f64)
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let view = session::current();
    let email = view
        .user
        .as_ref()
        .map(|u| u.email.clone())
        .unwrap_or_default();
    let is_admin = view.user.as_ref().is_some_and(|u| u.is_admin);
    let unconfirmed = view.email_enabled && view.user.as_ref().is_some_and(|u| !u.email_verified);
    let flash = view.flash.clone();
    let PageData::Dashboard {
        range,
        chart,
        keys,
        alerts,
        attention,
        disabled_webhooks,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let has_keys = !keys.is_empty();
    view! {
        <Title text="Dashboard" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <div class="flex flex-wrap items-end justify-between gap-4">
                <div>
                    <h1 class="text-2xl font-semibold tracking-tight">"Dashboard"</h1>
                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                        "Signed in as " <span data-testid="signed-in-email" class="font-medium text-slate-900 dark:text-slate-100">{email}</span>
                        {if is_admin { " · Admin · " } else { " · Developer" }}
                        {is_admin.then(|| view! { <a href="/admin" class=LINK>"Platform dashboard"</a> })}
                    </p>
                </div>
                <RangePicker range=range base="/dashboard" />
            </div>
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            {unconfirmed.then(|| view! {
                <div role="status" data-testid="confirm-email" class="flex flex-wrap items-center justify-between gap-3 rounded-xl border border-amber-300 bg-amber-50 px-4 py-3 text-sm dark:border-amber-800 dark:bg-amber-950/40">
                    <span>"Confirm your email address to create API keys: open the link we mailed you."</span>
                    <form method="post" action="/verify-email/resend">
                        <button type="submit" class=LINK>"Send a new link"</button>
                    </form>
                </div>
            })}
            {(disabled_webhooks > 0).then(|| view! {
                <div role="alert" data-testid="webhooks-disabled" class="flex flex-wrap items-center justify-between gap-3 rounded-xl border border-rose-300 bg-rose-50 px-4 py-3 text-sm dark:border-rose-800 dark:bg-rose-950/40">
                    <span>{format!("{} webhook {} stopped receiving events: every delivery failed for a day, so Keyport disabled {}.", disabled_webhooks, if disabled_webhooks == 1 { "endpoint" } else { "endpoints" }, if disabled_webhooks == 1 { "it" } else { "them" })}</span>
                    <a href="/webhooks" class=LINK>"Fix and re-enable"</a>
                </div>
            })}
            {(attention > 0).then(|| view! {
                <div role="status" class="flex flex-wrap items-center justify-between gap-3 rounded-xl border border-amber-300 bg-amber-50 px-4 py-3 text-sm dark:border-amber-800 dark:bg-amber-950/40">
                    <span>{format!("{} {} need{} attention: unused, expiring soon or never expiring.", attention, if attention == 1 { "key" } else { "keys" }, if attention == 1 { "s" } else { "" })}</span>
                    <a href="/hygiene" class=LINK>"Review keys"</a>
                </div>
            })}
            {(!alerts.is_empty()).then(|| view! {
                <div class="space-y-3">
                    <div class="flex items-center justify-between">
                        <h2 class="text-lg font-medium">"Open alerts"</h2>
                        <a href="/alerts" class=LINK>"All alerts"</a>
                    </div>
                    <ul class="space-y-3">
                        {alerts.into_iter().map(|a| view! { <AlertCard alert=a all_users=false /> }).collect_view()}
                    </ul>
                </div>
            })}
            <div class=CARD>
                <UsageChart chart title="Verifications of your keys" />
            </div>
            <div class="space-y-3">
                <div class="flex items-center justify-between">
                    <h2 class="text-lg font-medium">"Your keys in this range"</h2>
                    <a href="/keys/new" class=LINK>"Create a key"</a>
                </div>
                {if has_keys {
                    view! { <KeyUsageTable rows=keys owner=false /> }.into_any()
                } else {
                    view! {
                        <div class="rounded-xl border border-dashed border-slate-300 p-10 text-center dark:border-slate-700">
                            <h3 class="font-medium">"No API keys yet"</h3>
                            <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">"Create a key for the API you want to call; its usage appears here."</p>
                            <a href="/keys/new" class="mt-4 inline-flex rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500">"Create your first key"</a>
                        </div>
                    }.into_any()
                }}
            </div>
        </section>
    }
    .into_any()
}

/// Keys with their requests, denial rate and last use.
#[component]
pub fn KeyUsageTable(rows: Vec<KeyUsageRow>, owner: bool) -> impl IntoView {
    let cards = rows.clone();
    view! {
        // Phones: one card per key; the table from `sm` up.
        <ul class="space-y-3 sm:hidden">
            {cards.into_iter().map(|r| view! {
                <li class="rounded-xl border border-slate-200 p-4 text-sm dark:border-slate-800">
                    <div class="flex items-start justify-between gap-3">
                        <div class="min-w-0">
                            <a href=format!("/keys/{}", r.id) class=format!("{LINK} block truncate")>{r.name.clone()}</a>
                            <span class="font-mono text-xs text-slate-500">{format!("{}…", r.start)}</span>
                        </div>
                        <span class="shrink-0 text-right tabular-nums">{format!("{} requests", thousands(r.total))}</span>
                    </div>
                    <p class="mt-1 text-xs text-slate-600 dark:text-slate-400">
                        {if owner { format!("{} · {}", r.api, r.owner_email) } else { r.api.clone() }}
                        {format!(" · {} denied · last used ", rate(r.denied, r.total))}
                        <MaybeTime utc=r.last_used_at.clone() none="never" />
                    </p>
                </li>
            }).collect_view()}
        </ul>
        <div class=format!("{TABLE_WRAP} hidden sm:block")>
            <table class=TABLE>
                <thead class=THEAD>
                    <tr>
                        <th scope="col" class=TH>"Key"</th>
                        {owner.then(|| view! { <th scope="col" class=TH>"Owner"</th> })}
                        <th scope="col" class=TH>"API"</th>
                        <th scope="col" class=format!("{TH} text-right")>"Requests"</th>
                        <th scope="col" class=format!("{TH} text-right")>"Denied"</th>
                        <th scope="col" class=TH>"Last used"</th>
                    </tr>
                </thead>
                <tbody class=TBODY>
                    {rows.into_iter().map(|r| view! {
                        <tr data-testid="key-usage-row">
                            <td class="px-4 py-3">
                                <a href=format!("/keys/{}", r.id) class=LINK>{r.name.clone()}</a>
                                <div class="font-mono text-xs text-slate-500">{format!("{}…", r.start)}</div>
                            </td>
                            {owner.then(|| view! { <td class="px-4 py-3">{r.owner_email.clone()}</td> })}
                            <td class="px-4 py-3">{r.api.clone()}</td>
                            <td class="px-4 py-3 text-right tabular-nums">{thousands(r.total)}</td>
                            <td class="px-4 py-3 text-right tabular-nums">{rate(r.denied, r.total)}</td>
                            <td class="px-4 py-3 whitespace-nowrap text-slate-600 dark:text-slate-400"><MaybeTime utc=r.last_used_at.clone() none="Never" /></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn Stat(label: &'static str, value: String) -> impl IntoView {
    view! {
        <div class="rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900/40">
            <dt class="text-sm text-slate-600 dark:text-slate-400">{label}</dt>
            <dd class="mt-1 text-2xl font-semibold tabular-nums">{value}</dd>
        </div>
    }
}

#[component]
fn Ranking(title: &'static str, what: &'static str, rows: Vec<RankedRow>) -> impl IntoView {
    view! {
        <div class="space-y-3">
            <h2 class="text-lg font-medium">{title}</h2>
            {if rows.is_empty() {
                view! { <p class="rounded-xl border border-dashed border-slate-300 p-6 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">"No traffic in this range."</p> }.into_any()
            } else {
                view! {
                    <div class=TABLE_WRAP>
                        <table class=TABLE>
                            <thead class=THEAD>
                                <tr>
                                    <th scope="col" class=TH>{what}</th>
                                    <th scope="col" class=format!("{TH} text-right")>"Requests"</th>
                                    <th scope="col" class=format!("{TH} text-right")>"Denied"</th>
                                </tr>
                            </thead>
                            <tbody class=TBODY>
                                {rows.into_iter().map(|r| view! {
                                    <tr>
                                        <td class="px-4 py-3"><a href=r.href.clone() class=LINK>{r.label.clone()}</a></td>
                                        <td class="px-4 py-3 text-right tabular-nums">{thousands(r.total)}</td>
                                        <td class="px-4 py-3 text-right tabular-nums">{rate(r.denied, r.total)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </div>
    }
}

/// The email outbox: what waits, what gave up (with the last error), and a retry.
#[component]
fn OutboxPanel(outbox: OutboxView) -> impl IntoView {
    view! {
        <div class="space-y-3" id="outbox">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 class="text-lg font-medium">"Email outbox"</h2>
                <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="outbox-summary">
                    {format!("{} waiting · {} given up · {} sent", thousands(outbox.pending), thousands(outbox.failed), thousands(outbox.sent))}
                </p>
            </div>
            {if outbox.unsent.is_empty() {
                view! { <p class="rounded-xl border border-dashed border-slate-300 p-6 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">"Every email was delivered."</p> }.into_any()
            } else {
                view! {
                    <div class=TABLE_WRAP>
                        <table class=TABLE>
                            <caption class="sr-only">"Emails not delivered yet"</caption>
                            <thead class=THEAD>
                                <tr>
                                    <th scope="col" class=TH>"Message"</th>
                                    <th scope="col" class=TH>"To"</th>
                                    <th scope="col" class=TH>"Status"</th>
                                    <th scope="col" class=TH>"Attempts"</th>
                                    <th scope="col" class=TH>"Next attempt"</th>
                                    <th scope="col" class=TH>"Last error"</th>
                                    <th scope="col" class=TH><span class="sr-only">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody class=TBODY>
                                {outbox.unsent.into_iter().map(|row| view! {
                                    <tr>
                                        <td class="px-4 py-3">{row.kind.replace('_', " ")}</td>
                                        <td class="px-4 py-3 break-all">{row.recipient}</td>
                                        <td class="px-4 py-3">{if row.status == "failed" { "Given up" } else { "Waiting" }}</td>
                                        <td class="px-4 py-3">{row.attempts}</td>
                                        <td class="px-4 py-3 whitespace-nowrap">{if row.status == "failed" { view! { <span>"—"</span> }.into_any() } else { view! { <Time utc=row.next_attempt_at /> }.into_any() }}</td>
                                        <td class="px-4 py-3 text-xs text-slate-600 dark:text-slate-400">{row.last_error.unwrap_or_else(|| "—".into())}</td>
                                        <td class="px-4 py-3">
                                            <form method="post" action="/admin/outbox/retry">
                                                <input type="hidden" name="id" value=row.id.to_string() />
                                                <button type="submit" class=LINK>"Retry now"</button>
                                            </form>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </div>
    }
}

#[component]
pub fn AdminDashboard() -> impl IntoView {
    let view = session::current();
    let PageData::AdminDashboard {
        range,
        chart,
        active_keys,
        active_developers,
        new_signups,
        top_keys,
        top_developers,
        apis,
        outbox,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash.clone();
    let denied: u64 = chart
        .series
        .iter()
        .filter(|s| s.code != "VALID")
        .map(|s| s.total)
        .sum();
    let total = chart.total;
    view! {
        <Title text="Platform dashboard" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <div class="flex flex-wrap items-end justify-between gap-4">
                <div>
                    <h1 class="text-2xl font-semibold tracking-tight">"Platform dashboard"</h1>
                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">"Every key's verifications, across all developers and APIs. "
                        <a href="/admin/leaks" class="font-medium text-indigo-600 hover:underline dark:text-indigo-400">"Leak reports"</a></p>
                </div>
                <RangePicker range=range base="/admin" />
            </div>
            <dl class="grid grid-cols-2 gap-4 lg:grid-cols-5">
                <Stat label="Verifications" value=thousands(total) />
                <Stat label="Denial rate" value=rate(denied, total) />
                <Stat label="Active keys" value=thousands(active_keys) />
                <Stat label="Active developers" value=thousands(active_developers) />
                <Stat label="New sign-ups" value=thousands(new_signups) />
            </dl>
            <div class=CARD>
                <UsageChart chart title="Verifications by outcome" />
            </div>
            <div class="space-y-3">
                <h2 class="text-lg font-medium">"Top keys"</h2>
                {if top_keys.is_empty() {
                    view! { <p class="rounded-xl border border-dashed border-slate-300 p-6 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">"No key was used in this range."</p> }.into_any()
                } else {
                    view! { <div data-testid="top-keys"><KeyUsageTable rows=top_keys owner=true /></div> }.into_any()
                }}
            </div>
            <div class="grid gap-6 lg:grid-cols-2">
                <Ranking title="Top developers" what="Developer" rows=top_developers />
                <Ranking title="APIs" what="API" rows=apis />
            </div>
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            {outbox.map(|outbox| view! { <OutboxPanel outbox /> })}
        </section>
    }
    .into_any()
}
