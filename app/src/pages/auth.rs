//! Sign-up, sign-in (password, then authentication code), TOTP enrolment and recovery codes.
//! Plain HTML forms posting to the server's auth handlers, so they work before WASM loads.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        copy_button::CopyButton,
        form::{Alert, AuthCard, Field, PRIMARY, SECONDARY},
        ui::Notice,
    },
    session::{self, PageData},
};

const LINK: &str = "font-medium text-indigo-600 hover:text-indigo-500 dark:text-indigo-400";

#[component]
pub fn SignUp() -> impl IntoView {
    let flash = session::current().flash;
    view! {
        <Title text="Create your account" />
        <AuthCard title="Create your account" subtitle="Get API keys for the APIs you build on.">
            <form method="post" action="/signup" class="space-y-4" novalidate=false>
                <Alert message=flash.error.clone() />
                <Field name="email" label="Email" kind="email" autocomplete="email"
                    value=flash.email.clone() error=flash.field_error("email")
                    autofocus=true />
                <Field name="password" label="Password" kind="password" autocomplete="new-password"
                    hint="At least 12 characters. A few unrelated words work well."
                    error=flash.field_error("password") />
                <button type="submit" class=PRIMARY>"Create account"</button>
            </form>
            <p class="mt-6 text-sm text-slate-600 dark:text-slate-400">
                "Already have an account? " <a href="/login" class=LINK>"Sign in"</a>
            </p>
        </AuthCard>
    }
}

#[component]
pub fn Login() -> impl IntoView {
    let view_data = session::current();
    let email_enabled = view_data.email_enabled;
    let flash = view_data.flash;
    view! {
        <Title text="Sign in" />
        <AuthCard title="Sign in to Keyport">
            <form method="post" action="/login" class="space-y-4">
                <Notice message=flash.notice.clone() />
                <Alert message=flash.error.clone() />
                <Field name="email" label="Email" kind="email" autocomplete="username"
                    value=flash.email.clone() autofocus=true />
                <Field name="password" label="Password" kind="password" autocomplete="current-password" />
                {email_enabled.then(|| view! {
                    <p class="text-right text-sm"><a href="/forgot-password" class=LINK>"Forgot password?"</a></p>
                })}
                <button type="submit" class=PRIMARY>"Sign in"</button>
            </form>
            <p class="mt-6 text-sm text-slate-600 dark:text-slate-400">
                "New here? " <a href="/signup" class=LINK>"Create an account"</a>
            </p>
        </AuthCard>
    }
}

/// `/forgot-password`: an address, then "check your inbox" whatever it is.
#[component]
pub fn ForgotPassword() -> impl IntoView {
    let view_data = session::current();
    let flash = view_data.flash;
    view! {
        <Title text="Forgot password" />
        <AuthCard title="Reset your password"
            subtitle="Enter the address you signed up with. We will mail you a link to choose a new password.">
            {if view_data.email_enabled {
                view! {
                    <form method="post" action="/forgot-password" class="space-y-4">
                        <Alert message=flash.error.clone() />
                        <Field name="email" label="Email" kind="email" autocomplete="username"
                            value=flash.email.clone() error=flash.field_error("email") autofocus=true />
                        <button type="submit" class=PRIMARY>"Send reset link"</button>
                    </form>
                }.into_any()
            } else {
                view! {
                    <p class="text-sm">"This Keyport does not send email. Ask an administrator to help you into your account."</p>
                }.into_any()
            }}
            <p class="mt-6 text-sm text-slate-600 dark:text-slate-400">
                "Remembered it? " <a href="/login" class=LINK>"Sign in"</a>
            </p>
        </AuthCard>
    }
}

/// What a page opened from a dead link says.
fn dead_link(again: &'static str, again_label: &'static str) -> AnyView {
    view! {
        <div role="alert" class="space-y-4 text-sm">
            <p>"This link has expired or was already used. Each link works once, for a limited time."</p>
            <a href=again class=LINK>{again_label}</a>
        </div>
    }
    .into_any()
}

/// `/reset/:token`: a new password, when the link works.
#[component]
pub fn ResetPassword() -> impl IntoView {
    let view_data = session::current();
    let flash = view_data.flash;
    let (valid, email) = match view_data.page {
        PageData::EmailLink { valid, email } => (valid, email),
        _ => (false, None),
    };
    view! {
        <Title text="Choose a new password" />
        <AuthCard title="Choose a new password">
            {if valid {
                view! {
                    <form method="post" class="space-y-4">
                        <Alert message=flash.error.clone() />
                        <p class="text-sm text-slate-600 dark:text-slate-400">
                            "For " <span class="font-medium text-slate-900 dark:text-slate-100">{email.clone()}</span>
                            ". Every session of the account will be signed out; signing in still needs your authenticator app."
                        </p>
                        // Lets password managers tie the new password to the account.
                        <input type="hidden" name="username" autocomplete="username" value=email.clone() />
                        <Field name="password" label="New password" kind="password" autocomplete="new-password"
                            hint="At least 12 characters. A few unrelated words work well."
                            error=flash.field_error("password") autofocus=true />
                        <button type="submit" class=PRIMARY>"Change password"</button>
                    </form>
                }.into_any()
            } else {
                dead_link("/forgot-password", "Ask for a new link")
            }}
        </AuthCard>
    }
}

/// `/verify-email/:token`: one button confirms the address (opening the link alone does not,
/// so a mail scanner following it confirms nothing).
#[component]
pub fn VerifyEmail() -> impl IntoView {
    let view_data = session::current();
    let flash = view_data.flash;
    let (valid, email) = match view_data.page {
        PageData::EmailLink { valid, email } => (valid, email),
        _ => (false, None),
    };
    view! {
        <Title text="Confirm your email address" />
        <AuthCard title="Confirm your email address">
            {if valid {
                view! {
                    <form method="post" class="space-y-4">
                        <Alert message=flash.error.clone() />
                        <p class="text-sm">
                            "Confirm that " <span class="font-medium">{email.clone()}</span>
                            " is your address, to start creating API keys."
                        </p>
                        <button type="submit" class=PRIMARY>"Confirm email address"</button>
                    </form>
                }.into_any()
            } else {
                dead_link("/login", "Sign in to ask for a new link")
            }}
        </AuthCard>
    }
}

/// `/invite/:token`: sign-up with the invited address fixed.
#[component]
pub fn AcceptInvitation() -> impl IntoView {
    let view_data = session::current();
    let flash = view_data.flash;
    let PageData::Invitation { valid, email, role } = view_data.page else {
        return view! { <AuthCard title="Create your account">{dead_link("/login", "Sign in")}</AuthCard> }.into_any();
    };
    view! {
        <Title text="Create your account" />
        <AuthCard title="Create your account">
            {if valid {
                view! {
                    <form method="post" class="space-y-4">
                        <Alert message=flash.error.clone() />
                        <p class="text-sm text-slate-600 dark:text-slate-400">
                            {format!("You were invited to Keyport as {} {}.", if role == "admin" { "an" } else { "a" }, role)}
                        </p>
                        <div>
                            <label for="invite-email" class="block text-sm font-medium">"Email"</label>
                            <input id="invite-email" name="username" type="email" autocomplete="username" readonly=true
                                value=email.clone() class="mt-1 block w-full rounded-md border border-slate-200 bg-slate-50 px-3 py-2 text-sm dark:border-slate-700 dark:bg-slate-800" />
                        </div>
                        <Field name="password" label="Password" kind="password" autocomplete="new-password"
                            hint="At least 12 characters. A few unrelated words work well."
                            error=flash.field_error("password") autofocus=true />
                        <button type="submit" class=PRIMARY>"Create account"</button>
                    </form>
                }.into_any()
            } else {
                dead_link("/login", "Sign in")
            }}
        </AuthCard>
    }
    .into_any()
}

#[component]
pub fn LoginCode() -> impl IntoView {
    let flash = session::current().flash;
    view! {
        <Title text="Authentication code" />
        <AuthCard title="Two-factor authentication"
            subtitle="Enter the 6-digit code from your authenticator app, or one of your recovery codes.">
            <form method="post" action="/login/code" class="space-y-4">
                <Alert message=flash.error.clone() />
                <Field name="code" label="Authentication code" autocomplete="one-time-code"
                    inputmode="text" autofocus=true />
                <button type="submit" class=PRIMARY>"Verify"</button>
            </form>
            <form method="post" action="/logout" class="mt-6">
                <button type="submit" class=LINK>"Cancel and sign out"</button>
            </form>
        </AuthCard>
    }
}

#[component]
pub fn Enroll() -> impl IntoView {
    let view_data = session::current();
    let flash = view_data.flash;
    let enrolment = view_data.enrolment;
    view! {
        <Title text="Set up two-factor authentication" />
        <AuthCard title="Set up two-factor authentication"
            subtitle="Keyport requires an authenticator app (1Password, Google Authenticator, Authy, ...) for every account.">
            {match enrolment {
                None => view! {
                    <p class="text-sm">"Your setup has expired. Sign in again to continue."</p>
                    <a href="/login" class=LINK>"Sign in"</a>
                }.into_any(),
                Some(e) => view! {
                    <ol class="space-y-6 text-sm">
                        <li>
                            <p class="font-medium">"1. Scan this QR code with your authenticator app"</p>
                            <div class="mt-3 flex justify-center rounded-lg bg-white p-3" role="img"
                                aria-label="QR code for your authenticator app" inner_html=e.qr_svg></div>
                        </li>
                        <li>
                            <p class="font-medium">"2. Or enter the setup key by hand"</p>
                            <p id="setup-key-label" class="mt-2 text-xs text-slate-500 dark:text-slate-400">"Setup key"</p>
                            <div class="mt-1 flex items-center gap-2">
                                <code id="setup-key" aria-labelledby="setup-key-label" data-testid="setup-key"
                                    class="flex-1 break-all rounded-md bg-slate-100 px-3 py-2 font-mono text-sm dark:bg-slate-800">
                                    {e.setup_key.clone()}
                                </code>
                                <CopyButton text=e.setup_key.clone() label="Copy".to_owned() />
                            </div>
                        </li>
                        <li>
                            <p class="font-medium">"3. Enter the code your app shows"</p>
                            <form method="post" action="/enroll" class="mt-3 space-y-4">
                                <Alert message=flash.error.clone() />
                                <Field name="code" label="Authentication code" autocomplete="one-time-code"
                                    inputmode="numeric" autofocus=true />
                                <button type="submit" class=PRIMARY>"Verify"</button>
                            </form>
                        </li>
                    </ol>
                }.into_any(),
            }}
        </AuthCard>
    }
}

#[component]
pub fn RecoveryCodes() -> impl IntoView {
    let codes = session::current().recovery_codes.unwrap_or_default();
    let text = codes.join("\n");
    let download = format!(
        "data:text/plain;charset=utf-8,{}",
        text.replace('\n', "%0A")
    );
    view! {
        <Title text="Save your recovery codes" />
        <AuthCard title="Save your recovery codes"
            subtitle="If you lose your phone, each of these codes signs you in once. They are shown only now.">
            {if codes.is_empty() {
                view! {
                    <p class="text-sm">"Your recovery codes were already shown. You can make new ones in your account settings."</p>
                    <a href="/dashboard" class=PRIMARY>"Continue"</a>
                }.into_any()
            } else {
                view! {
                    <ul data-testid="recovery-codes" aria-label="Recovery codes"
                        class="grid grid-cols-2 gap-2 rounded-lg bg-slate-100 p-4 font-mono text-sm dark:bg-slate-800">
                        {codes.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}
                    </ul>
                    <div class="mt-4 flex gap-2">
                        <CopyButton text=text.clone() label="Copy codes".to_owned() />
                        <a href=download download="keyport-recovery-codes.txt" class=SECONDARY>"Download"</a>
                    </div>
                    <form method="post" action="/enroll/done" class="mt-6 space-y-4">
                        <label class="flex items-start gap-2 text-sm">
                            <input type="checkbox" name="saved" value="yes" required=true
                                class="mt-0.5 size-4 rounded border-slate-300 text-indigo-600" />
                            <span>"I have saved these codes"</span>
                        </label>
                        <button type="submit" class=PRIMARY>"Continue"</button>
                    </form>
                }.into_any()
            }}
        </AuthCard>
    }
}
