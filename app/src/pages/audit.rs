//! `/audit`: the audit log with filters; a developer's own events, an admin's everyone's.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::{Alert, INPUT, SECONDARY},
        local_time::Time,
        ui::*,
    },
    pages::not_found::NotFound,
    session::{self, PageData},
};

const ACTIONS: &[(&str, &str)] = &[
    ("", "All actions"),
    ("key.", "Keys: any"),
    ("key.create", "Key created"),
    ("key.update", "Key updated"),
    ("key.rotate", "Key rotated"),
    ("key.revoke", "Key revoked"),
    ("key.disable", "Key disabled"),
    ("key.enable", "Key enabled"),
    ("sign_in.", "Sign-ins"),
    ("password.", "Password"),
    ("api.", "APIs"),
    ("plan.", "Plans"),
    ("user.", "Users"),
    ("authz.denied", "Refused (not allowed)"),
];

#[component]
pub fn Audit() -> impl IntoView {
    let view = session::current();
    let PageData::Audit {
        rows,
        filter,
        all_users,
        older,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let filtered = !(filter.actor.is_empty()
        && filter.action.is_empty()
        && filter.target.is_empty()
        && filter.from.is_empty()
        && filter.to.is_empty());
    let subtitle = if all_users {
        "Every action on every account, key, API and plan."
    } else {
        "What happened to your account and your keys."
    };
    view! {
        <Title text="Audit log" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="Audit log".into() subtitle=subtitle />
            <Alert message=view.flash.error.clone() />
            <form method="get" action="/audit" role="search" aria-label="Filter the audit log" class="grid gap-3 rounded-xl border border-slate-200 p-4 sm:grid-cols-2 lg:grid-cols-6 dark:border-slate-800">
                {all_users.then(|| view! {
                    <div>
                        <label for="audit-actor" class=LABEL>"Actor"</label>
                        <input id="audit-actor" name="actor" type="search" value=filter.actor.clone() placeholder="Email or usr_ id" class=INPUT />
                    </div>
                })}
                <div>
                    <label for="audit-action" class=LABEL>"Action"</label>
                    <select id="audit-action" name="action" class=INPUT>
                        {ACTIONS.iter().map(|&(v, l)| view! { <option value=v selected=v == filter.action>{l}</option> }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="audit-target" class=LABEL>"Target"</label>
                    <input id="audit-target" name="target" type="search" value=filter.target.clone() placeholder="key_ or usr_ id" class=INPUT />
                </div>
                <div>
                    <label for="audit-from" class=LABEL>"From (UTC)"</label>
                    <input id="audit-from" name="from" type="date" value=filter.from.clone() class=INPUT />
                </div>
                <div>
                    <label for="audit-to" class=LABEL>"To (UTC)"</label>
                    <input id="audit-to" name="to" type="date" value=filter.to.clone() class=INPUT />
                </div>
                <div class="flex items-end gap-2">
                    <button type="submit" class=SECONDARY>"Apply"</button>
                    {filtered.then(|| view! { <a href="/audit" class="px-2 py-2 text-sm text-slate-600 hover:underline dark:text-slate-400">"Clear"</a> })}
                </div>
            </form>
            {if rows.is_empty() {
                view! { <EmptyState title="No events" text="Nothing matches these filters yet. Events appear here as you and others act on accounts and keys." /> }.into_any()
            } else {
                let cards = rows.clone();
                view! {
                    // Phones: one card per event; the table from `sm` up.
                    <ul class="space-y-3 sm:hidden" aria-label="Audit events, newest first">
                        {cards.into_iter().map(|e| view! {
                            <li class="rounded-xl border border-slate-200 p-4 text-sm dark:border-slate-800">
                                <div class="flex items-start justify-between gap-3">
                                    <span class="font-mono text-xs font-medium break-all">{e.action.clone()}</span>
                                    <span class="shrink-0 text-xs text-slate-600 dark:text-slate-400"><Time utc=e.at.clone() /></span>
                                </div>
                                <p class="mt-1 break-words">{e.actor.clone()}</p>
                                {e.target.clone().map(|t| view! {
                                    <p class="font-mono text-xs break-all">{match e.target_href.clone() {
                                        Some(href) => view! { <a class=LINK href=href>{t}</a> }.into_any(),
                                        None => view! { <span>{t}</span> }.into_any(),
                                    }}</p>
                                })}
                                {(!e.ip.is_empty()).then(|| view! { <p class="text-xs text-slate-600 dark:text-slate-400">{format!("From {}", e.ip)}</p> })}
                                {(!e.details.is_empty()).then(|| view! { <p class="mt-1 text-xs break-words text-slate-600 dark:text-slate-400">{e.details.clone()}</p> })}
                            </li>
                        }).collect_view()}
                    </ul>
                    <div class=format!("{TABLE_WRAP} hidden sm:block")>
                        <table class=TABLE>
                            <caption class="sr-only">"Audit events, newest first"</caption>
                            <thead class=THEAD>
                                <tr>
                                    <th scope="col" class=TH>"When"</th>
                                    <th scope="col" class=TH>"Action"</th>
                                    <th scope="col" class=TH>"Actor"</th>
                                    <th scope="col" class=TH>"Target"</th>
                                    <th scope="col" class=TH>"From"</th>
                                    <th scope="col" class=TH>"Details"</th>
                                </tr>
                            </thead>
                            <tbody class=TBODY>
                                {rows.into_iter().map(|e| view! {
                                    <tr>
                                        <td class="px-4 py-3 whitespace-nowrap"><Time utc=e.at.clone() /></td>
                                        <td class="px-4 py-3 font-mono text-xs">{e.action.clone()}</td>
                                        <td class="px-4 py-3">{e.actor.clone()}</td>
                                        <td class="px-4 py-3 font-mono text-xs">{match (e.target.clone(), e.target_href.clone()) {
                                            (Some(t), Some(href)) => view! { <a class=LINK href=href>{t}</a> }.into_any(),
                                            (Some(t), None) => view! { <span>{t}</span> }.into_any(),
                                            _ => view! { <span>"—"</span> }.into_any(),
                                        }}</td>
                                        <td class="px-4 py-3 whitespace-nowrap">{e.ip.clone()}</td>
                                        <td class="max-w-md px-4 py-3 text-xs break-words text-slate-600 dark:text-slate-400">{e.details.clone()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {older.map(|href| view! { <div class="flex justify-end"><a class=SECONDARY rel="next" href=href>"Older events"</a></div> })}
        </section>
    }
    .into_any()
}
