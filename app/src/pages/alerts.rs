//! `/alerts`: anomalies noticed in key usage (own keys; admins: all), with why each fired, a link
//! to the key, one-click disable and acknowledgement. The rules are on `/docs#alerts`.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::Alert as ErrorAlert,
        ui::{CARD, LINK, Notice, PageHeader},
    },
    pages::not_found::NotFound,
    session::{self, AlertRow, PageData},
};

const SMALL_BUTTON: &str = "inline-flex items-center rounded-md border border-slate-300 px-3 py-1.5 text-sm font-medium hover:bg-slate-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 dark:border-slate-700 dark:hover:bg-slate-800";
const SMALL_DANGER: &str = "inline-flex items-center rounded-md bg-red-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-red-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-600";

/// One alert: what fired, why, and what to do about it.
#[component]
pub fn AlertCard(alert: AlertRow, all_users: bool) -> impl IntoView {
    let a = alert;
    let colour = match a.rule.as_str() {
        "denials" => "border-l-red-500",
        "dormant_traffic" => "border-l-amber-500",
        _ => "border-l-indigo-500",
    };
    view! {
        <li class=format!("{CARD} border-l-4 {colour} space-y-2") data-testid="alert">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h3 class="font-medium">{a.rule_label.clone()} " on " <a href=format!("/keys/{}", a.key_id) class=LINK>{a.key_name.clone()}</a></h3>
                <span class="text-xs text-slate-500 dark:text-slate-400">{format!("{} UTC", a.window)}</span>
            </div>
            <p class="text-sm">{a.detail.clone()}</p>
            {all_users.then(|| view! { <p class="text-xs text-slate-500 dark:text-slate-400">{format!("Owner: {}", a.owner_email)}</p> })}
            <div class="flex flex-wrap items-center gap-2 pt-1">
                {a.acknowledged.then(|| view! { <span class="rounded-full bg-slate-100 px-2 py-0.5 text-xs dark:bg-slate-800">"Acknowledged"</span> })}
                {(!a.acknowledged).then(|| view! {
                    <form method="post" action=format!("/alerts/{}/acknowledge", a.id)>
                        <button type="submit" class=SMALL_BUTTON>"Acknowledge"</button>
                    </form>
                })}
                {a.key_active.then(|| view! {
                    <form method="post" action=format!("/keys/{}/action", a.key_id)>
                        <input type="hidden" name="action" value="disable" />
                        <button type="submit" class=SMALL_DANGER aria-label=format!("Disable key {}", a.key_name)>"Disable key"</button>
                    </form>
                })}
                <a href=format!("/keys/{}", a.key_id) class=format!("{LINK} text-sm")>"Open key (revoke, rotate)"</a>
            </div>
        </li>
    }
}

#[component]
pub fn Alerts() -> impl IntoView {
    let view = session::current();
    let PageData::Alerts {
        rows,
        show_all,
        all_users,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    view! {
        <Title text="Alerts" />
        <section class="mx-auto max-w-4xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="Alerts".into() subtitle=if all_users { "Anomalies in every key's usage, checked every minute." } else { "Anomalies in your keys' usage, checked every minute." }>
                {if show_all {
                    view! { <a href="/alerts" class=LINK>"Show open alerts only"</a> }.into_any()
                } else {
                    view! { <a href="/alerts?show=all" class=LINK>"Show acknowledged too"</a> }.into_any()
                }}
            </PageHeader>
            <Notice message=flash.notice.clone() />
            <ErrorAlert message=flash.error.clone() />
            {if rows.is_empty() {
                view! {
                    <div class="rounded-xl border border-dashed border-slate-300 p-10 text-center dark:border-slate-700">
                        <h2 class="font-medium">"No open alerts"</h2>
                        <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">"Keyport warns here about traffic spikes, bursts of denials and long-unused keys that start working again. "
                            <a href="/docs#alerts" class=LINK>"How alerts work"</a></p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <ul class="space-y-4">
                        {rows.into_iter().map(|a| view! { <AlertCard alert=a all_users /> }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}
