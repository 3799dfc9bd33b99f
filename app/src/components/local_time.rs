//! Times: rendered by the server in UTC ("2026-11-28 09:36 UTC"), then shown in the viewer's own
//! time zone once the page hydrates, with the UTC value kept on hover (`title`).
use leptos::prelude::*;

/// A UTC time given as `YYYY-MM-DD HH:MM[:SS][ UTC]` (as the server formats them).
#[component]
pub fn Time(#[prop(into)] utc: String) -> impl IntoView {
    let bare = utc.trim_end_matches(" UTC").to_owned();
    let iso = if bare.len() == 16 {
        format!("{}:00Z", bare.replace(' ', "T"))
    } else {
        format!("{}Z", bare.replace(' ', "T"))
    };
    let text = format!("{bare} UTC");
    let title = text.clone();
    view! { <time datetime=iso data-local="" title=title>{text}</time> }
}

/// `Time`, or a word such as "Never" when there is none.
#[component]
pub fn MaybeTime(utc: Option<String>, #[prop(into)] none: String) -> impl IntoView {
    match utc {
        Some(t) => view! { <Time utc=t /> }.into_any(),
        None => view! { <span>{none}</span> }.into_any(),
    }
}

/// Rewrites every `<time data-local>` on the page into the viewer's time zone and language.
/// Rendered once, in the layout.
#[island]
pub fn LocalTimes() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| localize());
    view! { <span hidden=true></span> }
}

#[cfg(feature = "hydrate")]
fn localize() -> Option<()> {
    use wasm_bindgen::{JsCast, JsValue};
    let window = web_sys::window()?;
    let language = window
        .navigator()
        .language()
        .unwrap_or_else(|| "en-US".into());
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into()).ok()?;
    js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into()).ok()?;
    let list = window
        .document()?
        .query_selector_all("time[data-local]")
        .ok()?;
    for i in 0..list.length() {
        let Some(el) = list
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        else {
            continue;
        };
        let Some(iso) = el.get_attribute("datetime") else {
            continue;
        };
        let date = js_sys::Date::new(&JsValue::from_str(&iso));
        if date.get_time().is_nan() {
            continue;
        }
        let text: String = date.to_locale_string(&language, &options).into();
        el.set_text_content(Some(&text));
        let _ = el.remove_attribute("data-local");
    }
    Some(())
}
