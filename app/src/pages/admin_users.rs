//! `/admin/users`: every account, with search and the admin actions (each confirmed first).
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::{Alert, INPUT, SECONDARY},
        local_time::{MaybeTime, Time},
        ui::StepUpField,
    },
    pages::not_found::NotFound,
    session::{self, AdminUserRow, PageData, PlanView},
};

#[component]
pub fn AdminUsers() -> impl IntoView {
    let view = session::current();
    let PageData::AdminUsers {
        users,
        query,
        page,
        pages,
        total,
        plans,
        needs_step_up,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    // Role, access and plan changes below ask for a fresh 2FA code when the last one is stale.
    provide_context(NeedsCode(needs_step_up));
    let flash = view.flash;
    let me = view.user.map(|u| u.id).unwrap_or_default();
    let link = |p: u64, q: &str| {
        format!(
            "/admin/users?page={p}&q={}",
            q.replace('&', "%26").replace(' ', "+")
        )
    };
    view! {
        <Title text="Users" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <div class="flex flex-wrap items-end justify-between gap-4">
                <div>
                    <h1 class="text-2xl font-semibold tracking-tight">"Users"</h1>
                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{format!("{total} account{}", if total == 1 { "" } else { "s" })}</p>
                </div>
                <form method="get" action="/admin/users" role="search" class="flex gap-2">
                    <label for="user-search" class="sr-only">"Search by email"</label>
                    <input id="user-search" type="search" name="q" value=query.clone() placeholder="Search by email" class=INPUT />
                    <button type="submit" class=SECONDARY>"Search"</button>
                </form>
            </div>
            {flash.notice.clone().map(|m| view! { <div role="status" class="rounded-md bg-green-50 px-3 py-2 text-sm text-green-800 dark:bg-green-950/50 dark:text-green-200">{m}</div> })}
            <Alert message=flash.error.clone() />
            {view.email_enabled.then(|| view! { <InviteForm flash=flash.clone() plans=plans.clone() /> })}
            {if users.is_empty() {
                view! { <p class="rounded-xl border border-dashed border-slate-300 p-10 text-center text-sm dark:border-slate-700">"No users match this search."</p> }.into_any()
            } else {
                let cards = users.clone();
                let (card_me, card_plans) = (me.clone(), plans.clone());
                view! {
                    // Phones: one card per user, actions included; the table from `sm` up.
                    <ul class="space-y-3 sm:hidden" aria-label="Users">
                        {cards.into_iter().map(|u| { let me = card_me.clone(); let plans = card_plans.clone(); view! { <UserCard user=u me plans /> } }).collect_view()}
                    </ul>
                    <div class="hidden overflow-x-auto rounded-xl border border-slate-200 sm:block dark:border-slate-800">
                        <table class="min-w-full divide-y divide-slate-200 text-sm dark:divide-slate-800">
                            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500 dark:bg-slate-900 dark:text-slate-400">
                                <tr>
                                    <th scope="col" class="px-4 py-3">"Email"</th>
                                    <th scope="col" class="px-4 py-3">"Role"</th>
                                    <th scope="col" class="px-4 py-3">"2FA"</th>
                                    <th scope="col" class="px-4 py-3">"Plan"</th>
                                    <th scope="col" class="px-4 py-3">"Created"</th>
                                    <th scope="col" class="px-4 py-3">"Last sign-in"</th>
                                    <th scope="col" class="px-4 py-3">"Status"</th>
                                    <th scope="col" class="px-4 py-3"><span class="sr-only">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody class="divide-y divide-slate-200 dark:divide-slate-800">
                                {users.into_iter().map(|u| { let me = me.clone(); let plans = plans.clone(); view! { <UserRow user=u me plans /> } }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {(pages > 1).then(|| view! {
                <nav aria-label="Pagination" class="flex items-center justify-between text-sm">
                    <span>{format!("Page {page} of {pages}")}</span>
                    <div class="flex gap-2">
                        {(page > 1).then(|| view! { <a class=SECONDARY href=link(page - 1, &query)>"Previous"</a> })}
                        {(page < pages).then(|| view! { <a class=SECONDARY href=link(page + 1, &query)>"Next"</a> })}
                    </div>
                </nav>
            })}
        </section>
    }
    .into_any()
}

/// "Invite someone": an address, a role and a plan; the invitation is mailed.
#[component]
fn InviteForm(flash: crate::session::Flash, plans: Vec<PlanView>) -> impl IntoView {
    let open = flash
        .field_errors
        .iter()
        .any(|(f, _)| f.starts_with("invite_") || f == "code");
    let role = flash.value("invite_role").unwrap_or_default();
    let plan = flash.value("invite_plan").unwrap_or_default();
    let default_plan = plans
        .iter()
        .find(|p| p.is_default)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    view! {
        <details open=open class="rounded-xl border border-slate-200 p-4 dark:border-slate-800">
            <summary class="cursor-pointer text-sm font-medium text-indigo-600 dark:text-indigo-400">"Invite someone by email"</summary>
            <form method="post" action="/admin/users/invite" class="mt-4 grid gap-4 sm:grid-cols-2">
                <div class="sm:col-span-2">
                    <label for="invite-email" class="block text-sm font-medium">"Email"</label>
                    <input id="invite-email" name="email" type="email" required=true autocomplete="off"
                        value=flash.value("invite_email")
                        aria-invalid=flash.field_error("invite_email").map(|_| "true")
                        aria-describedby="invite-email-error" class=INPUT />
                    {flash.field_error("invite_email").map(|e| view! { <p id="invite-email-error" class="mt-1 text-sm text-red-600 dark:text-red-400">{e}</p> })}
                </div>
                <div>
                    <label for="invite-role" class="block text-sm font-medium">"Role"</label>
                    <select id="invite-role" name="role" class=INPUT>
                        <option value="developer" selected=role != "admin">"Developer"</option>
                        <option value="admin" selected=role == "admin">"Admin"</option>
                    </select>
                </div>
                <div>
                    <label for="invite-plan" class="block text-sm font-medium">"Plan"</label>
                    <select id="invite-plan" name="plan_id" class=INPUT>
                        <option value="" selected=plan.is_empty()>{format!("Default ({default_plan})")}</option>
                        {plans.iter().map(|p| view! { <option value=p.id.clone() selected=plan == p.id>{p.name.clone()}</option> }).collect_view()}
                    </select>
                    {flash.field_error("invite_plan_id").map(|e| view! { <p class="mt-1 text-sm text-red-600 dark:text-red-400">{e}</p> })}
                </div>
                {needs_code().then(|| view! { <div class="sm:col-span-2"><StepUpField error=flash.field_error("code") id="invite-code" /></div> })}
                <div class="sm:col-span-2">
                    <button type="submit" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500">"Send invitation"</button>
                </div>
            </form>
        </details>
    }
}

/// Whether this page's sensitive forms must carry a fresh 2FA code.
#[derive(Clone, Copy)]
struct NeedsCode(bool);

fn needs_code() -> bool {
    use_context::<NeedsCode>().is_some_and(|n| n.0)
}

/// One action behind a confirmation: the first button only opens the question.
#[component]
fn ConfirmAction(
    user_id: String,
    action: &'static str,
    label: &'static str,
    question: String,
    danger: bool,
    /// In a phone card: the confirmation opens in the flow instead of as a popover.
    #[prop(optional)]
    inline: bool,
) -> impl IntoView {
    let confirm = if danger {
        "rounded-md bg-red-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-red-500"
    } else {
        "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500"
    };
    view! {
        <details class=if inline { "w-full" } else { "relative" }>
            <summary class="cursor-pointer list-none rounded-md px-2 py-1 text-sm text-indigo-600 hover:bg-slate-100 dark:text-indigo-400 dark:hover:bg-slate-800">{label}</summary>
            <form method="post" action="/admin/users/action" class=format!("{} mt-1 space-y-3 rounded-lg border border-slate-200 bg-white p-4 text-left shadow-lg dark:border-slate-700 dark:bg-slate-900", if inline { "w-full" } else { "absolute right-0 z-10 w-72" })>
                <p class="text-sm">{question}</p>
                <input type="hidden" name="user_id" value=user_id.clone() />
                <input type="hidden" name="action" value=action />
                {(needs_code() && matches!(action, "disable" | "reset-2fa" | "promote" | "demote")).then(|| view! {
                    <StepUpField error=None id=format!("code-{action}-{}{}", user_id, if inline { "-card" } else { "" }) />
                })}
                <button type="submit" class=confirm>{format!("Confirm: {}", label.to_lowercase())}</button>
            </form>
        </details>
    }
}

#[component]
fn UserRow(user: AdminUserRow, me: String, plans: Vec<PlanView>) -> impl IntoView {
    let is_me = user.id == me;
    view! {
        <tr>
            <td class="px-4 py-3 font-medium">{if is_me { format!("{} (you)", user.email) } else { user.email.clone() }}</td>
            <td class="px-4 py-3">{if user.is_admin { "Admin" } else { "Developer" }}</td>
            <td class="px-4 py-3">{if user.totp_enabled { "On" } else { "Not set up" }}</td>
            <td class="px-4 py-3">
                <form method="post" action="/admin/users/plan" class="flex items-center gap-1">
                    <input type="hidden" name="user_id" value=user.id.clone() />
                    <label for=format!("plan-{}", user.id) class="sr-only">{format!("Plan of {}", user.email)}</label>
                    <select id=format!("plan-{}", user.id) name="plan_id" class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900">
                        <option value="" selected=user.plan_id.is_none()>{format!("Default ({})", plans.iter().find(|p| p.is_default).map(|p| p.name.clone()).unwrap_or_default())}</option>
                        {plans.iter().map(|p| view! { <option value=p.id.clone() selected=user.plan_id.as_deref() == Some(p.id.as_str())>{p.name.clone()}</option> }).collect_view()}
                    </select>
                    {needs_code().then(|| view! {
                        <label for=format!("plan-code-{}", user.id) class="sr-only">"Authentication code"</label>
                        <input id=format!("plan-code-{}", user.id) name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                            required=true pattern="[0-9 ]{6,7}" maxlength="7" placeholder="2FA code"
                            class="w-24 rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900" />
                    })}
                    <button type="submit" class="rounded-md px-2 py-1 text-sm text-indigo-600 hover:bg-slate-100 dark:text-indigo-400 dark:hover:bg-slate-800">"Set"</button>
                </form>
            </td>
            <td class="px-4 py-3 whitespace-nowrap"><Time utc=user.created_at.clone() /></td>
            <td class="px-4 py-3 whitespace-nowrap"><MaybeTime utc=user.last_sign_in_at.clone() none="Never" /></td>
            <td class="px-4 py-3"><UserStatus user=user.clone() /></td>
            <td class="px-4 py-3">
                {(!is_me).then(|| view! { <UserActions user=user.clone() inline=false /> })}
            </td>
        </tr>
    }
}

#[component]
fn UserStatus(user: AdminUserRow) -> impl IntoView {
    let unconfirmed = user.email_unconfirmed.then(|| view! {
        <span class="ml-1 rounded-full bg-slate-100 px-2 py-0.5 text-xs text-slate-700 dark:bg-slate-800 dark:text-slate-200">"Email unconfirmed"</span>
    });
    view! { <UserState user /> {unconfirmed} }
}

#[component]
fn UserState(user: AdminUserRow) -> impl IntoView {
    if user.disabled {
        view! { <span class="rounded-full bg-red-100 px-2 py-0.5 text-xs text-red-800 dark:bg-red-900 dark:text-red-100">"Disabled"</span> }.into_any()
    } else if user.locked {
        view! { <span class="rounded-full bg-amber-100 px-2 py-0.5 text-xs text-amber-800 dark:bg-amber-900 dark:text-amber-100">"Locked"</span> }.into_any()
    } else {
        view! { <span class="rounded-full bg-green-100 px-2 py-0.5 text-xs text-green-800 dark:bg-green-900 dark:text-green-100">"Active"</span> }.into_any()
    }
}

/// A user on a phone: email and status on top, then role, 2FA, plan, dates and the actions.
#[component]
fn UserCard(user: AdminUserRow, me: String, plans: Vec<PlanView>) -> impl IntoView {
    let is_me = user.id == me;
    let plan = user.plan.clone().unwrap_or_else(|| {
        format!(
            "Default ({})",
            plans
                .iter()
                .find(|p| p.is_default)
                .map(|p| p.name.clone())
                .unwrap_or_default()
        )
    });
    view! {
        <li class="rounded-xl border border-slate-200 p-4 text-sm dark:border-slate-800">
            <div class="flex items-start justify-between gap-3">
                <span class="min-w-0 font-medium break-all">{if is_me { format!("{} (you)", user.email) } else { user.email.clone() }}</span>
                <span class="shrink-0"><UserStatus user=user.clone() /></span>
            </div>
            <p class="mt-1 text-xs text-slate-600 dark:text-slate-400">
                {format!("{} · 2FA {} · plan {plan}", if user.is_admin { "Admin" } else { "Developer" }, if user.totp_enabled { "on" } else { "not set up" })}
            </p>
            <dl class="mt-2 grid grid-cols-2 gap-2 text-xs">
                <div><dt class="text-slate-500 dark:text-slate-400">"Created"</dt><dd><Time utc=user.created_at.clone() /></dd></div>
                <div><dt class="text-slate-500 dark:text-slate-400">"Last sign-in"</dt><dd><MaybeTime utc=user.last_sign_in_at.clone() none="Never" /></dd></div>
            </dl>
            {(!is_me).then(|| view! { <div class="mt-2"><UserActions user=user.clone() inline=true /></div> })}
        </li>
    }
}

/// The admin's actions on a user, each behind its confirmation.
#[component]
fn UserActions(user: AdminUserRow, inline: bool) -> impl IntoView {
    let email = user.email.clone();
    let id = user.id.clone();
    view! {
                    <div class=if inline { "flex flex-col items-start gap-1" } else { "flex flex-wrap justify-end gap-1" }>
                        {if user.disabled {
                            view! { <ConfirmAction user_id=id.clone() action="enable" label="Enable" danger=false inline
                                question=format!("Enable {email}? They can sign in again.") /> }.into_any()
                        } else {
                            view! { <ConfirmAction user_id=id.clone() action="disable" label="Disable" danger=true inline
                                question=format!("Disable {email}? Their sessions end now and they cannot sign in.") /> }.into_any()
                        }}
                        <ConfirmAction user_id=id.clone() action="end-sessions" label="End sessions" danger=true inline
                            question=format!("End every session of {email}? They must sign in again.") />
                        {user.email_unconfirmed.then(|| view! { <ConfirmAction user_id=id.clone() action="resend-verification" label="Resend confirmation" danger=false inline
                            question=format!("Mail {email} a new link to confirm the address?") /> })}
                        {user.locked.then(|| view! { <ConfirmAction user_id=id.clone() action="unlock" label="Unlock" danger=false inline
                            question=format!("Allow {email} to sign in again now? Their failed-attempt counters are cleared.") /> })}
                        {user.totp_enabled.then(|| view! { <ConfirmAction user_id=id.clone() action="reset-2fa" label="Reset 2FA" danger=true inline
                            question=format!("Reset two-factor authentication for {email}? They set up a new authenticator at next sign-in.") /> })}
                        {if user.is_admin {
                            view! { <ConfirmAction user_id=id.clone() action="demote" label="Make developer" danger=false inline
                                question=format!("Remove admin rights from {email}?") /> }.into_any()
                        } else {
                            view! { <ConfirmAction user_id=id.clone() action="promote" label="Make admin" danger=false inline
                                question=format!("Give {email} admin rights over every user and key?") /> }.into_any()
                        }}
                    </div>
    }
}
