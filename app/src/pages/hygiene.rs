//! `/hygiene`: keys that deserve a look (never used, unused for 30 days, expiring soon, never
//! expiring, owned by disabled users), with bulk revoke. Developers see their own keys, admins
//! everyone's.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::{Alert, INPUT},
        local_time::{MaybeTime, Time},
        ui::{
            Confirm, DANGER, HINT, LABEL, LINK, Notice, PageHeader, StepUpField, TABLE, TABLE_WRAP,
            TBODY, TH, THEAD,
        },
    },
    pages::not_found::NotFound,
    session::{self, HygieneGroup, PageData},
};

#[component]
fn Group(group: HygieneGroup, all_users: bool) -> impl IntoView {
    let issue = group.issue.clone();
    view! {
        <section class="space-y-3" aria-labelledby=format!("h-{issue}") data-testid=format!("hygiene-{issue}")>
            <div>
                <h2 id=format!("h-{issue}") class="text-lg font-medium">{group.label.clone()} <span class="text-slate-500 dark:text-slate-400">{format!(" ({})", group.rows.len())}</span></h2>
                <p class="text-sm text-slate-600 dark:text-slate-400">{group.advice.clone()}</p>
            </div>
            <div class=TABLE_WRAP>
                <table class=TABLE>
                    <thead class=THEAD>
                        <tr>
                            <th scope="col" class=TH><span class="sr-only">"Select"</span></th>
                            <th scope="col" class=TH>"Key"</th>
                            {all_users.then(|| view! { <th scope="col" class=TH>"Owner"</th> })}
                            <th scope="col" class=TH>"API"</th>
                            <th scope="col" class=TH>"Created"</th>
                            <th scope="col" class=TH>"Expires"</th>
                            <th scope="col" class=TH>"Last used"</th>
                        </tr>
                    </thead>
                    <tbody class=TBODY>
                        {group.rows.into_iter().map(|r| {
                            let input_id = format!("select-{}-{}", issue, r.id);
                            view! {
                                <tr>
                                    <td class="px-4 py-3">
                                        <input id=input_id.clone() type="checkbox" name="key" value=r.id.clone() class="size-4" />
                                        <label for=input_id class="sr-only">{format!("Select {}", r.name)}</label>
                                    </td>
                                    <td class="px-4 py-3">
                                        <a href=format!("/keys/{}", r.id) class=LINK>{r.name.clone()}</a>
                                        <div class="font-mono text-xs text-slate-500">{format!("{}…", r.start)}</div>
                                    </td>
                                    {all_users.then(|| view! { <td class="px-4 py-3">{r.owner_email.clone()}</td> })}
                                    <td class="px-4 py-3">{r.api.clone()}</td>
                                    <td class="px-4 py-3 whitespace-nowrap"><Time utc=r.created_at.clone() /></td>
                                    <td class="px-4 py-3 whitespace-nowrap"><MaybeTime utc=r.expires_at.clone() none="Never" /></td>
                                    <td class="px-4 py-3 whitespace-nowrap"><MaybeTime utc=r.last_used_at.clone() none="Never" /></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
pub fn Hygiene() -> impl IntoView {
    let view = session::current();
    let PageData::Hygiene {
        groups,
        all_users,
        needs_step_up,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    let code_error = flash.field_error("code");
    let empty = groups.is_empty();
    view! {
        <Title text="Key hygiene" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="Key hygiene".into() subtitle=if all_users { "Every user's keys that deserve a look." } else { "Your keys that deserve a look." } />
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            {if empty {
                view! {
                    <div class="rounded-xl border border-dashed border-slate-300 p-10 text-center dark:border-slate-700">
                        <h2 class="font-medium">"Nothing to tidy up"</h2>
                        <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">"Every live key is in use, expires in good time and belongs to an active user."</p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <form method="post" action="/hygiene/revoke" class="space-y-8">
                        {groups.into_iter().map(|g| view! { <Group group=g all_users /> }).collect_view()}
                        <div class="sticky bottom-0 border-t border-slate-200 bg-white/95 py-4 dark:border-slate-800 dark:bg-slate-950/95">
                            <Confirm label="Revoke selected keys…".into() danger=true>
                                <p class="text-sm">"Revoke every selected key? Requests using them fail from now on. This cannot be undone."</p>
                                <div>
                                    <label for="bulk-reason" class=LABEL>"Reason (optional)"</label>
                                    <input id="bulk-reason" name="reason" maxlength="500" class=INPUT placeholder="e.g. clean-up of unused keys" />
                                    <p class=HINT>"Recorded in the audit log for each key."</p>
                                </div>
                                {needs_step_up.then(|| view! { <StepUpField error=code_error.clone() /> })}
                                <button type="submit" class=DANGER>"Revoke selected keys"</button>
                            </Confirm>
                        </div>
                    </form>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}
