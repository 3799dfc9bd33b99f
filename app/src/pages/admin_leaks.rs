//! `/admin/leaks`: tokens reported leaked (by secret-scanning partners, admins or `keyport scan
//! --report`), whether each was a Keyport key, and what was done to it.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        local_time::Time,
        ui::{LINK, PageHeader, Pagination, TABLE, TABLE_WRAP, TBODY, TH, THEAD},
    },
    pages::not_found::NotFound,
    session::{self, PageData},
};

#[component]
pub fn AdminLeaks() -> impl IntoView {
    let view = session::current();
    let PageData::AdminLeaks {
        rows,
        page,
        pages,
        total,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    view! {
        <Title text="Leak reports" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="Leak reports".into() subtitle=format!("{total} tokens reported. Every live key among them was revoked (or disabled) the moment it was reported.")>
                <a href="/docs#leak-reports" class=LINK>"How leak reports work"</a>
            </PageHeader>
            {if rows.is_empty() {
                view! {
                    <div class="rounded-xl border border-dashed border-slate-300 px-6 py-12 text-center dark:border-slate-700">
                        <p class="font-medium">"No leak reports yet"</p>
                        <p class="mx-auto mt-1 max-w-md text-sm text-slate-600 dark:text-slate-400">"Secret-scanning partners post tokens they find to /v1/leaks; run keyport scan --report in CI to send yours."</p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <div class=TABLE_WRAP>
                        <table class=TABLE>
                            <caption class="sr-only">"Reported tokens, newest first"</caption>
                            <thead class=THEAD><tr>
                                <th scope="col" class=TH>"Received"</th>
                                <th scope="col" class=TH>"Outcome"</th>
                                <th scope="col" class=TH>"Key"</th>
                                <th scope="col" class=TH>"Found at"</th>
                                <th scope="col" class=TH>"Reported by"</th>
                            </tr></thead>
                            <tbody class=TBODY>
                                {rows.into_iter().map(|r| {
                                    let positive = r.label == "true_positive";
                                    let outcome = if positive { format!("Keyport key, {}", r.action) } else { "Not a Keyport key".to_owned() };
                                    let colour = if positive { "bg-red-100 text-red-800 dark:bg-red-900 dark:text-red-100" } else { "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-100" };
                                    view! {
                                        <tr data-testid="leak-report">
                                            <td class=TH><Time utc=r.received_at.clone() /></td>
                                            <td class=TH><span class=format!("inline-block whitespace-nowrap rounded-full px-2 py-0.5 text-xs font-medium {colour}")>{outcome}</span></td>
                                            <td class=TH>{match r.key_id.clone() {
                                                Some(id) => view! { <a href=format!("/keys/{id}") class=format!("{LINK} font-mono text-xs")>{id.clone()}</a> }.into_any(),
                                                None => view! { <span class="font-mono text-xs text-slate-500">{format!("{}…", &r.token_hash[..12.min(r.token_hash.len())])}</span> }.into_any(),
                                            }}</td>
                                            <td class=TH><span class="break-all">{r.url.clone()}</span>
                                                <div class="text-xs text-slate-500 dark:text-slate-400">{r.source.clone()}</div></td>
                                            <td class=TH><span class="text-xs">{r.reporter.clone()}</span></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <Pagination page pages link=Callback::new(|p: u64| format!("/admin/leaks?page={p}")) />
        </section>
    }
    .into_any()
}
