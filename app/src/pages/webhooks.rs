//! `/webhooks` and `/webhooks/{id}`: a developer's endpoints for events of their own keys (admins:
//! also platform-wide ones), the signing secret shown once, a test event, and each endpoint's
//! delivery log with redelivery.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        copy_button::CopyButton,
        form::{Alert, INPUT, SECONDARY},
        local_time::{MaybeTime, Time},
        ui::{
            BUTTON, CARD, Confirm, DANGER, ERROR, HINT, LABEL, LINK, Notice, PageHeader,
            Pagination, TABLE, TABLE_WRAP, TBODY, TH, THEAD,
        },
    },
    pages::not_found::NotFound,
    session::{self, DeliveryRow, Flash, PageData, WebhookRow},
};

/// The signing secret, right after it was made.
#[component]
fn OneTimeSecret(secret: String) -> impl IntoView {
    view! {
        <div role="alert" class="space-y-3 rounded-xl border border-amber-300 bg-amber-50 p-5 dark:border-amber-800 dark:bg-amber-950/40">
            <h2 class="font-semibold text-amber-900 dark:text-amber-100">"Copy the signing secret now"</h2>
            <p class="text-sm text-amber-900 dark:text-amber-200">"Your receiver checks each delivery's signature with it (any Standard Webhooks library: "
                <code>"standardwebhooks"</code>", "<code>"svix"</code>"). This is the only time Keyport shows it."</p>
            <div class="flex flex-wrap items-center gap-2">
                <label for="new-secret" class="sr-only">"Signing secret"</label>
                <input id="new-secret" readonly=true value=secret.clone() data-testid="webhook-secret"
                    class="min-w-0 flex-1 rounded-md border border-amber-300 bg-white px-3 py-2 font-mono text-sm dark:border-amber-800 dark:bg-slate-950" />
                <CopyButton text=secret label="Copy secret".into() />
            </div>
        </div>
    }
}

/// Enabled, disabled (by whom), or failing.
#[component]
fn EndpointBadge(endpoint: WebhookRow) -> impl IntoView {
    let (colour, text) = if !endpoint.enabled {
        (
            "bg-slate-200 text-slate-700 dark:bg-slate-700 dark:text-slate-100",
            "Disabled",
        )
    } else if endpoint.failing_since.is_some() {
        (
            "bg-amber-100 text-amber-800 dark:bg-amber-900 dark:text-amber-100",
            "Failing",
        )
    } else {
        (
            "bg-green-100 text-green-800 dark:bg-green-900 dark:text-green-100",
            "Enabled",
        )
    };
    view! { <span class=format!("inline-block whitespace-nowrap rounded-full px-2 py-0.5 text-xs font-medium {colour}")>{text}</span> }
}

fn events_text(events: &[String]) -> String {
    if events.is_empty() {
        "Every event".to_owned()
    } else {
        events.join(", ")
    }
}

/// Event checkboxes; none ticked means every event.
#[component]
fn EventChoices(
    event_types: Vec<String>,
    chosen: Vec<String>,
    is_admin: bool,
    id_prefix: String,
) -> impl IntoView {
    view! {
        <fieldset>
            <legend class=LABEL>"Events"</legend>
            <p class=HINT>"Tick none to receive every event."</p>
            <div class="mt-2 grid gap-x-4 gap-y-1 sm:grid-cols-2">
                {event_types.into_iter().filter(|e| is_admin || !e.starts_with("user.")).map(|e| {
                    let id = format!("{id_prefix}-{}", e.replace('.', "-"));
                    let label_for = id.clone();
                    let checked = chosen.contains(&e);
                    view! {
                        <label for=label_for class="flex items-center gap-2 text-sm">
                            <input id=id type="checkbox" name="events" value=e.clone() checked=checked class="size-4 rounded border-slate-300" />
                            <span class="font-mono text-xs">{e.clone()}</span>
                        </label>
                    }
                }).collect_view()}
            </div>
        </fieldset>
    }
}

/// URL and description inputs, refilled after an error.
#[component]
fn EndpointFields(
    flash: Flash,
    url: String,
    description: String,
    id_prefix: &'static str,
) -> impl IntoView {
    let url_error = flash.field_error("url");
    let description_error = flash.field_error("description");
    let url = flash.value("url").unwrap_or(url);
    let description = flash.value("description").unwrap_or(description);
    let url_id = format!("{id_prefix}-url");
    let description_id = format!("{id_prefix}-description");
    view! {
        <div>
            <label for=url_id.clone() class=LABEL>"Endpoint URL"</label>
            <input id=url_id.clone() name="url" type="url" required=true value=url placeholder="https://hooks.example.com/keyport"
                aria-invalid=url_error.is_some().then_some("true") aria-describedby=format!("{url_id}-hint") class=INPUT />
            <p id=format!("{url_id}-hint") class=HINT>"A public https:// address. Keyport POSTs JSON to it, signed, and follows no redirect."</p>
            {url_error.map(|e| view! { <p class=ERROR>{e}</p> })}
        </div>
        <div>
            <label for=description_id.clone() class=LABEL>"Description " <span class="font-normal text-slate-500">"(optional)"</span></label>
            <input id=description_id name="description" type="text" maxlength="200" value=description
                aria-invalid=description_error.is_some().then_some("true") class=INPUT />
            {description_error.map(|e| view! { <p class=ERROR>{e}</p> })}
        </div>
    }
}

#[component]
fn EndpointCard(endpoint: WebhookRow, all_users: bool) -> impl IntoView {
    let e = endpoint;
    let action = format!("/webhooks/{}/action", e.id);
    let (a1, a2, a3, a4) = (action.clone(), action.clone(), action.clone(), action);
    let enabled = e.enabled;
    view! {
        <li class=format!("{CARD} space-y-3") data-testid="webhook">
            <div class="flex flex-wrap items-start justify-between gap-2">
                <div class="min-w-0">
                    <a href=format!("/webhooks/{}", e.id) class=format!("{LINK} break-all font-mono text-sm")>{e.url.clone()}</a>
                    {(!e.description.is_empty()).then(|| view! { <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{e.description.clone()}</p> })}
                </div>
                <div class="flex items-center gap-2">
                    {e.platform.then(|| view! { <span class="rounded-full bg-indigo-100 px-2 py-0.5 text-xs font-medium text-indigo-800 dark:bg-indigo-900 dark:text-indigo-100">"Every user"</span> })}
                    <EndpointBadge endpoint=e.clone() />
                </div>
            </div>
            <p class="text-sm"><span class="text-slate-500 dark:text-slate-400">"Events: "</span>{events_text(&e.events)}</p>
            {all_users.then(|| view! { <p class="text-xs text-slate-500 dark:text-slate-400">{format!("Owner: {}", e.owner_email)}</p> })}
            {e.disabled_reason.clone().map(|r| view! { <p class="text-sm text-red-700 dark:text-red-300">{r}</p> })}
            {e.failing_since.clone().filter(|_| enabled).map(|t| view! {
                <p class="text-sm text-amber-800 dark:text-amber-200">"Deliveries failing since " <Time utc=t />
                    ". Keyport retries for a day, then disables the endpoint."</p>
            })}
            <div class="flex flex-wrap items-start gap-2 pt-1">
                <a href=format!("/webhooks/{}", e.id) class=SECONDARY>"Delivery log"</a>
                {enabled.then(|| view! {
                    <form method="post" action=a1>
                        <input type="hidden" name="action" value="test" />
                        <button type="submit" class=SECONDARY>"Send test event"</button>
                    </form>
                })}
                <form method="post" action=a2>
                    <input type="hidden" name="action" value=if enabled { "disable" } else { "enable" } />
                    <button type="submit" class=SECONDARY>{if enabled { "Disable" } else { "Enable" }}</button>
                </form>
                <Confirm label="Rotate secret".into()>
                    <p class="text-sm">"A new signing secret replaces this one. For 24 hours deliveries carry both signatures, so your receiver keeps working while you switch."</p>
                    <form method="post" action=a3>
                        <input type="hidden" name="action" value="rotate" />
                        <button type="submit" class=BUTTON>"Make a new secret"</button>
                    </form>
                </Confirm>
                <Confirm label="Delete".into() danger=true>
                    <p class="text-sm">"Delete this endpoint? Deliveries still waiting are dropped, and it receives nothing more. This cannot be undone."</p>
                    <form method="post" action=a4>
                        <input type="hidden" name="action" value="delete" />
                        <button type="submit" class=DANGER>"Delete endpoint"</button>
                    </form>
                </Confirm>
            </div>
        </li>
    }
}

#[component]
pub fn Webhooks() -> impl IntoView {
    let view = session::current();
    let PageData::Webhooks {
        endpoints,
        event_types,
        is_admin,
        all_users,
        new_secret,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    let chosen = flash
        .values
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect::<Vec<_>>();
    let events_error = flash.field_error("events");
    let platform_checked = flash.value("platform").is_some();
    view! {
        <Title text="Webhooks" />
        <section class="mx-auto max-w-4xl space-y-6 px-4 py-10 sm:px-6">
            <PageHeader title="Webhooks".into() subtitle="Keyport POSTs a signed JSON event to your endpoints when your keys change, expire, leak or run out of quota.">
                {if is_admin {
                    if all_users {
                        view! { <a href="/webhooks" class=LINK>"Show my endpoints"</a> }.into_any()
                    } else {
                        view! { <a href="/webhooks?show=all" class=LINK>"Show every user's endpoints"</a> }.into_any()
                    }
                } else {
                    view! { <a href="/docs#webhooks" class=LINK>"How webhooks work"</a> }.into_any()
                }}
            </PageHeader>
            {new_secret.map(|(_, secret)| view! { <OneTimeSecret secret /> })}
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            {if endpoints.is_empty() {
                view! {
                    <div class="rounded-xl border border-dashed border-slate-300 px-6 py-12 text-center dark:border-slate-700">
                        <p class="font-medium">"No endpoints yet"</p>
                        <p class="mx-auto mt-1 max-w-md text-sm text-slate-600 dark:text-slate-400">"Add a URL below and Keyport sends it key.created, key.revoked, quota.warning and the other events you choose, signed so your receiver knows they came from here."</p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <ul class="space-y-4" aria-label="Endpoints">
                        {endpoints.into_iter().map(|e| view! { <EndpointCard endpoint=e all_users /> }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <section class=CARD aria-labelledby="new-webhook-heading">
                <h2 id="new-webhook-heading" class="text-lg font-medium">"Add an endpoint"</h2>
                <form method="post" action="/webhooks" class="mt-4 space-y-4">
                    <EndpointFields flash=flash.clone() url=String::new() description=String::new() id_prefix="new" />
                    <EventChoices event_types chosen is_admin id_prefix="new-event".into() />
                    {events_error.map(|e| view! { <p class=ERROR>{e}</p> })}
                    {is_admin.then(|| view! {
                        <label class="flex items-center gap-2 text-sm">
                            <input type="checkbox" name="platform" value="yes" checked=platform_checked class="size-4 rounded border-slate-300" />
                            "Every user's events (platform-wide; also user.created and user.disabled)"
                        </label>
                    })}
                    <button type="submit" class=BUTTON>"Add endpoint"</button>
                </form>
            </section>
        </section>
    }
    .into_any()
}

fn status_label(status: &str) -> (&'static str, &'static str) {
    match status {
        "sent" => (
            "bg-green-100 text-green-800 dark:bg-green-900 dark:text-green-100",
            "Delivered",
        ),
        "failed" => (
            "bg-red-100 text-red-800 dark:bg-red-900 dark:text-red-100",
            "Gave up",
        ),
        _ => (
            "bg-amber-100 text-amber-800 dark:bg-amber-900 dark:text-amber-100",
            "Retrying",
        ),
    }
}

#[component]
fn DeliveryItem(delivery: DeliveryRow, endpoint_id: String, enabled: bool) -> impl IntoView {
    let d = delivery;
    let (colour, label) = status_label(&d.status);
    let label = if d.status == "pending" && d.attempts.is_empty() {
        "Queued"
    } else {
        label
    };
    view! {
        <tr data-testid="delivery">
            <td class=TH><span class="font-mono text-xs">{d.event.clone()}</span>
                <div class="font-mono text-xs text-slate-500 dark:text-slate-400">{d.msg_id.clone()}</div></td>
            <td class=TH><span class=format!("inline-block whitespace-nowrap rounded-full px-2 py-0.5 text-xs font-medium {colour}")>{label}</span>
                {d.next_attempt_at.clone().filter(|_| !d.attempts.is_empty()).map(|t| view! {
                    <div class="mt-1 text-xs text-slate-500 dark:text-slate-400">"Next try " <Time utc=t /></div>
                })}</td>
            <td class=TH>
                {if d.attempts.is_empty() {
                    view! { <span class="text-slate-500 dark:text-slate-400">"Not tried yet"</span> }.into_any()
                } else {
                    view! {
                        <ol class="space-y-1" aria-label="Attempts">
                            {d.attempts.iter().map(|a| view! {
                                <li class="text-xs">
                                    <span class="font-medium">{format!("#{} ", a.attempt)}</span>
                                    {match a.status_code { Some(c) => format!("HTTP {c}"), None => "No answer".into() }}
                                    {format!(" · {} ms · ", a.latency_ms)}
                                    <Time utc=a.at.clone() />
                                    {a.error.clone().filter(|_| a.status_code.is_none()).map(|e| view! { <div class="break-all text-red-700 dark:text-red-300">{e}</div> })}
                                </li>
                            }).collect_view()}
                        </ol>
                    }.into_any()
                }}
            </td>
            <td class=TH><Time utc=d.created_at.clone() /></td>
            <td class=TH>
                {enabled.then(|| view! {
                    <form method="post" action=format!("/webhooks/{endpoint_id}/action")>
                        <input type="hidden" name="action" value="redeliver" />
                        <input type="hidden" name="delivery" value=d.id.to_string() />
                        <button type="submit" class=SECONDARY aria-label=format!("Redeliver {} ({})", d.event, d.msg_id)>"Redeliver"</button>
                    </form>
                })}
            </td>
        </tr>
    }
}

#[component]
pub fn WebhookDetail() -> impl IntoView {
    let view = session::current();
    let PageData::WebhookDetail {
        endpoint,
        deliveries,
        page,
        pages,
        total,
        event_types,
        new_secret,
        own,
    } = view.page
    else {
        return view! { <NotFound /> }.into_any();
    };
    let flash = view.flash;
    let is_admin = view.user.as_ref().is_some_and(|u| u.is_admin);
    let badge = endpoint.clone();
    let WebhookRow {
        id,
        url,
        description,
        events,
        enabled,
        platform,
        owner_email,
        disabled_reason,
        previous_secret_until,
        created_at,
        ..
    } = endpoint;
    let link_id = id.clone();
    let action = format!("/webhooks/{id}/action");
    let events_summary = events_text(&events);
    let (edit_url, edit_description, edit_events) = (url.clone(), description.clone(), events);
    let edit_all_events = is_admin && platform;
    let description = Some(description).filter(|d| !d.is_empty());
    let shown_id = id.clone();
    view! {
        <Title text="Webhook endpoint" />
        <section class="mx-auto max-w-5xl space-y-6 px-4 py-10 sm:px-6">
            <nav aria-label="Breadcrumb" class="text-sm"><a href="/webhooks" class=LINK>"Webhooks"</a></nav>
            <PageHeader title="Webhook endpoint".into() subtitle=url>
                <EndpointBadge endpoint=badge />
            </PageHeader>
            {new_secret.map(|secret| view! { <OneTimeSecret secret /> })}
            <Notice message=flash.notice.clone() />
            <Alert message=flash.error.clone() />
            {disabled_reason.map(|r| view! { <p class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-900 dark:bg-red-950/40 dark:text-red-200">{r}</p> })}
            <div class=CARD>
                <dl class="grid grid-cols-1 gap-x-6 gap-y-3 text-sm sm:grid-cols-2">
                    <div><dt class="text-slate-500 dark:text-slate-400">"Id"</dt><dd class="font-mono">{shown_id}</dd></div>
                    <div><dt class="text-slate-500 dark:text-slate-400">"Events"</dt><dd>{events_summary}</dd></div>
                    <div><dt class="text-slate-500 dark:text-slate-400">"Created"</dt><dd><Time utc=created_at /></dd></div>
                    <div><dt class="text-slate-500 dark:text-slate-400">"Previous secret signs until"</dt><dd><MaybeTime utc=previous_secret_until none="Not rotating" /></dd></div>
                    {description.map(|d| view! { <div class="sm:col-span-2"><dt class="text-slate-500 dark:text-slate-400">"Description"</dt><dd>{d}</dd></div> })}
                    {(!own).then(|| view! { <div><dt class="text-slate-500 dark:text-slate-400">"Owner"</dt><dd>{owner_email}</dd></div> })}
                </dl>
                <div class="mt-4 flex flex-wrap gap-2">
                    {enabled.then(|| view! {
                        <form method="post" action=action.clone()>
                            <input type="hidden" name="action" value="test" />
                            <button type="submit" class=BUTTON>"Send test event"</button>
                        </form>
                    })}
                    <form method="post" action=action.clone()>
                        <input type="hidden" name="action" value=if enabled { "disable" } else { "enable" } />
                        <button type="submit" class=SECONDARY>{if enabled { "Disable" } else { "Enable" }}</button>
                    </form>
                </div>
                <details class="mt-4" open=flash.field_error("url").is_some() || flash.field_error("events").is_some()>
                    <summary class=format!("{LINK} cursor-pointer text-sm")>"Edit URL, description and events"</summary>
                    <form method="post" action=action.clone() class="mt-3 space-y-4">
                        <input type="hidden" name="action" value="edit" />
                        <EndpointFields flash=flash.clone() url=edit_url description=edit_description id_prefix="edit" />
                        <EventChoices event_types chosen=edit_events is_admin=edit_all_events id_prefix="edit-event".into() />
                        {flash.field_error("events").map(|m| view! { <p class=ERROR>{m}</p> })}
                        <button type="submit" class=BUTTON>"Save changes"</button>
                    </form>
                </details>
            </div>
            <section aria-labelledby="deliveries-heading" class="space-y-3">
                <h2 id="deliveries-heading" class="text-lg font-medium">{format!("Deliveries ({total})")}</h2>
                {if deliveries.is_empty() {
                    view! {
                        <div class="rounded-xl border border-dashed border-slate-300 px-6 py-10 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">
                            "Nothing delivered yet. Send a test event to check your receiver."
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <div class=TABLE_WRAP>
                            <table class=TABLE>
                                <caption class="sr-only">"Deliveries to this endpoint, newest first"</caption>
                                <thead class=THEAD><tr>
                                    <th scope="col" class=TH>"Event"</th>
                                    <th scope="col" class=TH>"Status"</th>
                                    <th scope="col" class=TH>"Attempts"</th>
                                    <th scope="col" class=TH>"Queued"</th>
                                    <th scope="col" class=TH><span class="sr-only">"Actions"</span></th>
                                </tr></thead>
                                <tbody class=TBODY>
                                    {deliveries.into_iter().map(|d| view! { <DeliveryItem delivery=d endpoint_id=id.clone() enabled /> }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
                <Pagination page pages link=Callback::new(move |p: u64| format!("/webhooks/{link_id}?page={p}")) />
            </section>
        </section>
    }
    .into_any()
}
