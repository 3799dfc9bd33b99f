//! Light and dark themes. The choice lives in a cookie so the server renders the right theme
//! without an inline script (which the content security policy would have to allow); with no
//! cookie the page follows the operating system's preference through CSS.

/// Name of the cookie remembering the visitor's theme.
pub const COOKIE: &str = "keyport_theme";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    /// The class put on `<html>`; the stylesheet's `dark:` variant keys off it.
    pub fn class(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn parse(value: &str) -> Option<Theme> {
        match value {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    pub fn toggled(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

/// Finds the theme in a `Cookie` header value.
pub fn from_cookie_header(header: &str) -> Option<Theme> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| Theme::parse(value.trim()))
}

/// The theme the current request asked for, if any (server side only).
#[cfg(feature = "ssr")]
pub fn requested_theme() -> Option<Theme> {
    use leptos::prelude::use_context;
    let parts = use_context::<http::request::Parts>()?;
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(from_cookie_header)
}

#[cfg(not(feature = "ssr"))]
pub fn requested_theme() -> Option<Theme> {
    None
}

/// The theme in effect in the browser: the class on `<html>`, else the OS preference.
#[cfg(feature = "hydrate")]
pub fn current() -> Theme {
    let Some(window) = web_sys::window() else {
        return Theme::Light;
    };
    let root = window.document().and_then(|d| d.document_element());
    if let Some(root) = root {
        let classes = root.class_list();
        if classes.contains("dark") {
            return Theme::Dark;
        }
        if classes.contains("light") {
            return Theme::Light;
        }
    }
    let prefers_dark = window
        .match_media("(prefers-color-scheme: dark)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches());
    if prefers_dark {
        Theme::Dark
    } else {
        Theme::Light
    }
}

/// Applies `theme` to the page and remembers it for a year.
#[cfg(feature = "hydrate")]
pub fn apply(theme: Theme) {
    use wasm_bindgen::JsCast;
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(root) = document.document_element() {
        let classes = root.class_list();
        let _ = classes.remove_2("light", "dark");
        let _ = classes.add_1(theme.class());
    }
    if let Ok(html) = document.dyn_into::<web_sys::HtmlDocument>() {
        let _ = html.set_cookie(&format!(
            "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            theme.class()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_theme_cookie_among_others() {
        assert_eq!(
            from_cookie_header("a=1; keyport_theme=dark; b=2"),
            Some(Theme::Dark)
        );
        assert_eq!(
            from_cookie_header("keyport_theme=light"),
            Some(Theme::Light)
        );
        assert_eq!(from_cookie_header("keyport_theme=purple"), None);
        assert_eq!(from_cookie_header("other=dark"), None);
        assert_eq!(from_cookie_header(""), None);
    }

    #[test]
    fn toggling_flips_between_the_two_themes() {
        assert_eq!(Theme::Light.toggled(), Theme::Dark);
        assert_eq!(Theme::Dark.toggled().class(), "light");
    }
}
