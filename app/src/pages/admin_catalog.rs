//! `/admin/apis`, `/admin/apis/:slug` and `/admin/plans`: the catalog keys grant access to, and
//! the plans that set their limits.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::{Alert, INPUT, SECONDARY},
        ui::*,
    },
    pages::not_found::NotFound,
    session::{self, ApiView, Flash, PageData, PlanView},
};

fn scopes_text(api: &ApiView) -> String {
    api.scopes
        .iter()
        .map(|(n, d)| {
            if d.is_empty() {
                n.clone()
            } else {
                format!("{n} {d}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn versions_text(api: &ApiView) -> String {
    api.versions
        .iter()
        .map(|(n, s, d)| match d {
            Some(d) => format!("{n} {s} {d}"),
            None => format!("{n} {s}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fields shared by the create and edit forms of an API.
#[component]
fn ApiFields(flash: Flash, api: Option<ApiView>) -> impl IntoView {
    let value = |field: &str, current: String| flash.value(field).unwrap_or(current);
    let name = value(
        "name",
        api.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
    );
    let description = value(
        "description",
        api.as_ref()
            .map(|a| a.description.clone())
            .unwrap_or_default(),
    );
    let scopes = value("scopes", api.as_ref().map(scopes_text).unwrap_or_default());
    let versions = value(
        "versions",
        api.as_ref()
            .map(versions_text)
            .unwrap_or_else(|| "v1 active".into()),
    );
    let builtin = api.as_ref().is_some_and(|a| a.built_in);
    view! {
        <div>
            <label for="api-name" class=LABEL>"Name"</label>
            <input id="api-name" name="name" required=true maxlength="200" value=name class=INPUT placeholder="Orders" />
            {flash.field_error("name").map(|e| view! { <p class=ERROR>{e}</p> })}
        </div>
        <div>
            <label for="api-description" class=LABEL>"Description"</label>
            <textarea id="api-description" name="description" rows="2" class=INPUT>{description}</textarea>
        </div>
        <div>
            <label for="api-scopes" class=LABEL>"Scopes"</label>
            <textarea id="api-scopes" name="scopes" rows="4" readonly=builtin class=format!("{INPUT} font-mono") aria-describedby="api-scopes-hint"
                placeholder="orders:read Read orders\norders:write Create and change orders">{scopes}</textarea>
            <p id="api-scopes-hint" class=HINT>{if builtin { "The built-in API's scopes are fixed." } else { "One per line: the scope name (lowercase, e.g. orders:read), then a description." }}</p>
            {flash.field_error("scopes").map(|e| view! { <p class=ERROR>{e}</p> })}
        </div>
        <div>
            <label for="api-versions" class=LABEL>"Versions"</label>
            <textarea id="api-versions" name="versions" rows="3" class=format!("{INPUT} font-mono") aria-describedby="api-versions-hint"
                placeholder="v1 active\nv0 deprecated 2027-06-30\nbeta retired">{versions}</textarea>
            <p id="api-versions-hint" class=HINT>"One per line: name, status (active, deprecated or retired), and for a deprecated version an optional sunset date (YYYY-MM-DD)."</p>
            {flash.field_error("versions").map(|e| view! { <p class=ERROR>{e}</p> })}
        </div>
    }
}

#[component]
pub fn AdminApis() -> impl IntoView {
    let view = session::current();
    let PageData::AdminApis { apis } = view.page else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    let open = flash.error.is_some();
    view! {
        <Title text="APIs" />
        <section class="mx-auto max-w-6xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="APIs".into() subtitle="The APIs that keys grant access to, with their scopes and versions." />
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            <div class=TABLE_WRAP>
                <table class=TABLE>
                    <caption class="sr-only">"Registered APIs"</caption>
                    <thead class=THEAD>
                        <tr>
                            <th scope="col" class=TH>"API"</th>
                            <th scope="col" class=TH>"Scopes"</th>
                            <th scope="col" class=TH>"Versions"</th>
                            <th scope="col" class=TH>"Keys"</th>
                        </tr>
                    </thead>
                    <tbody class=TBODY>
                        {apis.into_iter().map(|a| view! {
                            <tr>
                                <td class="px-4 py-3">
                                    <a class=LINK href=format!("/admin/apis/{}", a.slug)>{a.name.clone()}</a>
                                    <span class="ml-2 font-mono text-xs text-slate-500">{a.slug.clone()}</span>
                                    {a.built_in.then(|| view! { <span class="ml-2 rounded-full bg-slate-200 px-2 py-0.5 text-xs dark:bg-slate-700">"built-in"</span> })}
                                    <span class="block text-xs text-slate-500 dark:text-slate-400">{a.description.clone()}</span>
                                </td>
                                <td class="px-4 py-3 font-mono text-xs">{a.scopes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>().join(", ")}</td>
                                <td class="px-4 py-3 text-xs">{a.versions.iter().map(|(n, s, _)| format!("{n} ({s})")).collect::<Vec<_>>().join(", ")}</td>
                                <td class="px-4 py-3">{a.keys}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <details class=CARD open=open>
                <summary class="cursor-pointer text-lg font-medium">"Register an API"</summary>
                <form method="post" action="/admin/apis" class="mt-4 max-w-2xl space-y-4">
                    <div>
                        <label for="api-slug" class=LABEL>"Slug"</label>
                        <input id="api-slug" name="slug" required=true maxlength="64" pattern="[a-z][a-z0-9\\-]{1,63}" value=flash.value("slug") class=format!("{INPUT} font-mono") placeholder="orders" aria-describedby="api-slug-hint" />
                        <p id="api-slug-hint" class=HINT>"How gateways and keys name this API: lowercase letters, digits and hyphens. It cannot change later."</p>
                        {flash.field_error("slug").map(|e| view! { <p class=ERROR>{e}</p> })}
                    </div>
                    <ApiFields flash=flash.clone() api=None />
                    <button type="submit" class=BUTTON>"Register API"</button>
                </form>
            </details>
        </section>
    }
    .into_any()
}

#[component]
pub fn AdminApi() -> impl IntoView {
    let view = session::current();
    let PageData::AdminApi { api } = view.page else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    view! {
        <Title text=format!("API {}", api.name) />
        <section class="mx-auto max-w-3xl space-y-6 px-4 py-10 sm:px-6">
            <nav aria-label="Breadcrumb" class="text-sm"><a href="/admin/apis" class=LINK>"APIs"</a>{format!(" / {}", api.slug)}</nav>
            <PageHeader title=api.name.clone() subtitle=format!("Slug: {}", api.slug) />
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            <form method="post" action=format!("/admin/apis/{}", api.slug) class=format!("{CARD} space-y-4")>
                <ApiFields flash=flash.clone() api=Some(api.clone()) />
                <p class=HINT>"Removing a scope that active keys hold is refused: revoke those keys or take the scope off them first."</p>
                <div class="flex gap-2">
                    <button type="submit" class=BUTTON>"Save changes"</button>
                    <a href="/admin/apis" class=SECONDARY>"Cancel"</a>
                </div>
            </form>
        </section>
    }
    .into_any()
}

#[component]
fn PlanFields(plan: Option<PlanView>, flash: Flash, prefix: String) -> impl IntoView {
    let p = plan.clone().unwrap_or_default();
    let num = |v: Option<u64>| v.map(|n| n.to_string());
    let id = move |f: &str| format!("{prefix}-{f}");
    view! {
        {plan.as_ref().map(|p| view! { <input type="hidden" name="plan_id" value=p.id.clone() /> })}
        <div class="grid gap-4 sm:grid-cols-2">
            <div class="sm:col-span-2">
                <label for=id("name") class=LABEL>"Name"</label>
                <input id=id("name") name="name" required=true maxlength="100" value=p.name.clone() class=INPUT />
                {flash.field_error("name").map(|e| view! { <p class=ERROR>{e}</p> })}
            </div>
            <div>
                <label for=id("rate") class=LABEL>"Rate limit (requests)"</label>
                <input id=id("rate") name="rate_limit" type="number" min="1" value=num(p.rate_limit.map(u64::from)) class=INPUT placeholder="none" />
                {flash.field_error("rate_limit").map(|e| view! { <p class=ERROR>{e}</p> })}
            </div>
            <div>
                <label for=id("period") class=LABEL>"per (seconds)"</label>
                <input id=id("period") name="rate_period_s" type="number" min="1" max="86400" value=num(p.rate_period_s.map(u64::from)).unwrap_or_else(|| "1".into()) class=INPUT />
            </div>
            <div>
                <label for=id("burst") class=LABEL>"Burst"</label>
                <input id=id("burst") name="burst" type="number" min="1" value=num(p.burst.map(u64::from)) class=INPUT placeholder="same as the limit" />
                {flash.field_error("burst").map(|e| view! { <p class=ERROR>{e}</p> })}
            </div>
            <div>
                <label for=id("quota") class=LABEL>"Quota (requests)"</label>
                <div class="flex gap-2">
                    <input id=id("quota") name="quota_limit" type="number" min="1" value=num(p.quota_limit) class=INPUT placeholder="none" />
                    <label for=id("quota-period") class="sr-only">"Quota period"</label>
                    <select id=id("quota-period") name="quota_period" class=INPUT>
                        <option value="day" selected=p.quota_period.as_deref() != Some("month")>"per day"</option>
                        <option value="month" selected=p.quota_period.as_deref() == Some("month")>"per month"</option>
                    </select>
                </div>
            </div>
            <div>
                <label for=id("keys") class=LABEL>"Max active keys per user"</label>
                <input id=id("keys") name="max_active_keys" type="number" min="0" value=num(p.max_active_keys.map(u64::from)) class=INPUT placeholder="unlimited" />
            </div>
            <div>
                <label for=id("lifetime") class=LABEL>"Max key lifetime (days)"</label>
                <input id=id("lifetime") name="max_lifetime_days" type="number" min="1" value=num(p.max_lifetime_days.map(u64::from)) class=INPUT placeholder="keys may never expire" />
                {flash.field_error("max_lifetime_days").map(|e| view! { <p class=ERROR>{e}</p> })}
            </div>
            <fieldset class="sm:col-span-2">
                <legend class=LABEL>"The rate limit and quota apply"</legend>
                <div class="mt-1 flex flex-wrap gap-4 text-sm">
                    <label class="flex items-center gap-2">
                        <input type="radio" name="limit_scope" value="key" checked=!p.per_developer />
                        "to each key"
                    </label>
                    <label class="flex items-center gap-2">
                        <input type="radio" name="limit_scope" value="developer" checked=p.per_developer />
                        "to all of a developer's keys together"
                    </label>
                </div>
            </fieldset>
        </div>
    }
}

#[component]
pub fn AdminPlans() -> impl IntoView {
    let view = session::current();
    let PageData::AdminPlans {
        plans,
        needs_step_up,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    view! {
        <Title text="Plans" />
        <section class="mx-auto max-w-5xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="Plans".into() subtitle="Limits for each user's keys. A key can lower its plan's limits, never raise them." />
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            <ul class="space-y-3">
                {plans.into_iter().map(|p| {
                    let id = p.id.clone();
                    view! {
                        <li class=CARD>
                            <div class="flex flex-wrap items-start justify-between gap-3">
                                <div>
                                    <h2 class="font-medium">{p.name.clone()}{p.is_default.then(|| view! { <span class="ml-2 rounded-full bg-indigo-100 px-2 py-0.5 text-xs text-indigo-800 dark:bg-indigo-900 dark:text-indigo-100">"default"</span> })}</h2>
                                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{p.summary.clone()}</p>
                                </div>
                                {(!p.is_default).then(|| view! {
                                    <form method="post" action="/admin/plans/default" class="space-y-2">
                                        <input type="hidden" name="plan_id" value=id.clone() />
                                        {needs_step_up.then(|| view! { <StepUpField error=None id=format!("code-default-{id}") /> })}
                                        <button type="submit" class=SECONDARY>"Make default"</button>
                                    </form>
                                })}
                            </div>
                            <details class="mt-3">
                                <summary class="cursor-pointer text-sm font-medium text-indigo-600 dark:text-indigo-400">"Edit"</summary>
                                <form method="post" action="/admin/plans" class="mt-3 space-y-4">
                                    <PlanFields plan=Some(p.clone()) flash=Flash::default() prefix=format!("plan-{id}") />
                                    {needs_step_up.then(|| view! { <StepUpField error=None id=format!("code-plan-{id}") /> })}
                                    <button type="submit" class=BUTTON>"Save plan"</button>
                                </form>
                            </details>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <details class=CARD open=flash.error.is_some()>
                <summary class="cursor-pointer text-lg font-medium">"Create a plan"</summary>
                <form method="post" action="/admin/plans" class="mt-4 space-y-4">
                    <PlanFields plan=None flash=flash.clone() prefix="new-plan".into() />
                    <button type="submit" class=BUTTON>"Create plan"</button>
                </form>
            </details>
        </section>
    }
    .into_any()
}
