//! `/settings`: password, two-factor authentication, recovery codes and signed-in sessions.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::form::{Alert, Field, SECONDARY},
    session::{self, PageData, SessionRow},
};

const BUTTON: &str = "inline-flex items-center justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600";
const DANGER: &str = "inline-flex items-center justify-center rounded-md bg-red-600 px-3 py-2 text-sm font-medium text-white shadow-sm hover:bg-red-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-600";
const CARD: &str = "rounded-xl border border-slate-200 p-6 dark:border-slate-800";

#[component]
fn Notice(message: Option<String>) -> impl IntoView {
    message.map(|m| view! {
        <div role="status" class="rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800 dark:border-green-900 dark:bg-green-950/50 dark:text-green-200">{m}</div>
    })
}

#[component]
pub fn Settings() -> impl IntoView {
    let view = session::current();
    let flash = view.flash;
    let totp_enabled = view.user.as_ref().is_some_and(|u| u.totp_enabled);
    let email = view.user.map(|u| u.email).unwrap_or_default();
    let (sessions, unused, legacy, notifications) = match view.page {
        PageData::Settings {
            sessions,
            unused_recovery_codes,
            legacy_recovery_codes,
            notifications,
        } => (
            sessions,
            unused_recovery_codes,
            legacy_recovery_codes,
            notifications,
        ),
        _ => (Vec::new(), 0, 0, None),
    };
    let others = sessions.iter().filter(|s| !s.current).count();
    view! {
        <Title text="Settings" />
        <section class="mx-auto max-w-3xl space-y-8 px-4 py-10 sm:px-6">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">"Settings"</h1>
                <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{email}</p>
            </div>
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />

            <section class=CARD aria-labelledby="password-heading">
                <h2 id="password-heading" class="text-lg font-medium">"Password"</h2>
                <form method="post" action="/settings/password" class="mt-4 max-w-sm space-y-4">
                    <Field name="current_password" label="Current password" kind="password" autocomplete="current-password"
                        error=flash.field_error("current_password") />
                    <Field name="new_password" label="New password" kind="password" autocomplete="new-password"
                        hint="At least 12 characters." error=flash.field_error("new_password") />
                    <label class="flex items-center gap-2 text-sm">
                        <input type="checkbox" name="sign_out_others" value="yes" checked=true class="size-4 rounded border-slate-300" />
                        "Sign out my other sessions"
                    </label>
                    <button type="submit" class=BUTTON>"Change password"</button>
                </form>
            </section>

            {if totp_enabled {
                view! {
            <section class=CARD aria-labelledby="twofa-heading">
                <h2 id="twofa-heading" class="text-lg font-medium">"Two-factor authentication"</h2>
                <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                    {format!("On, with an authenticator app. {unused} of 10 recovery codes unused.")}
                </p>
                {(legacy > 0).then(|| view! {
                    <p class="mt-3 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-200" role="status">
                        "Your recovery codes come from an earlier version of Keyport and are shorter than today's. They still work, but make new ones below and keep those instead."
                    </p>
                })}
                <div class="mt-4 grid gap-6 sm:grid-cols-2">
                    <form method="post" action="/settings/recovery-codes" class="space-y-3">
                        <h3 class="text-sm font-medium">"New recovery codes"</h3>
                        <p class="text-xs text-slate-500 dark:text-slate-400">"Your current codes stop working."</p>
                        <Field name="code" id="recovery-code" label="Authentication code" autocomplete="one-time-code" inputmode="numeric"
                            error=flash.field_error("recovery_code") />
                        <button type="submit" class=SECONDARY>"Make new recovery codes"</button>
                    </form>
                    <form method="post" action="/settings/2fa/reset" class="space-y-3">
                        <h3 class="text-sm font-medium">"Move to a new authenticator"</h3>
                        <p class="text-xs text-slate-500 dark:text-slate-400">"You will set up the new app right away; the old one stops working."</p>
                        <Field name="code" id="reset-code" label="Authentication code" autocomplete="one-time-code" inputmode="numeric"
                            error=flash.field_error("reset_code") />
                        <button type="submit" class=SECONDARY>"Reset two-factor authentication"</button>
                    </form>
                </div>
            </section>

                }.into_any()
            } else {
                view! {
                    <section class=CARD aria-labelledby="twofa-heading">
                        <h2 id="twofa-heading" class="text-lg font-medium">"Two-factor authentication"</h2>
                        <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">"Off. Protect your account and keys with an authenticator app."</p>
                        <form method="post" action="/settings/2fa/setup" class="mt-4">
                            <button type="submit" class=BUTTON>"Set up two-factor authentication"</button>
                        </form>
                    </section>
                }.into_any()
            }}
            {notifications.map(|prefs| view! {
                <section class=CARD aria-labelledby="notifications-heading">
                    <h2 id="notifications-heading" class="text-lg font-medium">"Email notifications"</h2>
                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                        "Security notices (password changed, two-factor authentication reset, a recovery code used) are always sent."
                    </p>
                    <form method="post" action="/settings/notifications" class="mt-4 space-y-3">
                        <fieldset class="space-y-2">
                            <legend class="sr-only">"Email me when"</legend>
                            {prefs.into_iter().map(|p| view! {
                                <label class="flex items-start gap-2 text-sm">
                                    <input type="checkbox" name="on" value=p.id.clone() checked=p.on
                                        class="mt-0.5 size-4 rounded border-slate-300 text-indigo-600" />
                                    <span>{p.label}</span>
                                </label>
                            }).collect_view()}
                        </fieldset>
                        <button type="submit" class=SECONDARY>"Save notification settings"</button>
                    </form>
                </section>
            })}
            <section class=CARD aria-labelledby="sessions-heading">
                <div class="flex flex-wrap items-center justify-between gap-3">
                    <h2 id="sessions-heading" class="text-lg font-medium">"Sessions"</h2>
                    {(others > 0).then(|| view! {
                        <form method="post" action="/settings/sessions/end-others">
                            <button type="submit" class=SECONDARY>"Sign out other sessions"</button>
                        </form>
                    })}
                </div>
                <ul class="mt-4 divide-y divide-slate-200 dark:divide-slate-800">
                    {sessions.into_iter().map(|s| view! { <SessionItem session=s /> }).collect_view()}
                </ul>
            </section>
        </section>
    }
}

#[component]
fn SessionItem(session: SessionRow) -> impl IntoView {
    view! {
        <li class="flex flex-wrap items-center justify-between gap-3 py-3 text-sm">
            <div>
                <p class="font-medium">{session.user_agent.clone()}
                    {session.current.then(|| view! { <span class="ml-2 rounded-full bg-green-100 px-2 py-0.5 text-xs text-green-800 dark:bg-green-900 dark:text-green-100">"This session"</span> })}
                </p>
                <p class="text-slate-500 dark:text-slate-400">{session.ip.clone()} " · last seen " <time>{session.last_seen.clone()} " UTC"</time></p>
            </div>
            {(!session.current).then(|| view! {
                <form method="post" action="/settings/sessions/end">
                    <input type="hidden" name="handle" value=session.handle.clone() />
                    <button type="submit" class=DANGER aria-label=format!("End session {} from {}", session.user_agent, session.ip)>"End session"</button>
                </form>
            })}
        </li>
    }
}
