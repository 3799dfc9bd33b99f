//! Verifications over time as a stacked bar chart, drawn on the server as SVG (readable without
//! WASM, with native tooltips), with axes and a legend in HTML so text stays crisp at any width.
//! After hydration, [`ChartHover`] adds a styled tooltip that follows the pointer.
use leptos::prelude::*;

use crate::session::{ChartView, RangeView};

/// The colour of an outcome (fills are SVG attributes, not classes).
pub fn colour(code: &str) -> &'static str {
    match code {
        "VALID" => "#10b981",
        "RATE_LIMITED" => "#f59e0b",
        "QUOTA_EXCEEDED" => "#ea580c",
        "INSUFFICIENT_SCOPE" => "#8b5cf6",
        "IP_NOT_ALLOWED" => "#e11d48",
        "VERSION_RETIRED" => "#0ea5e9",
        "EXPIRED" => "#64748b",
        "REVOKED" => "#991b1b",
        "DISABLED" => "#94a3b8",
        _ => "#475569",
    }
}

/// An outcome's name for people.
pub fn label(code: &str) -> &'static str {
    match code {
        "VALID" => "Valid",
        "RATE_LIMITED" => "Rate limited",
        "QUOTA_EXCEEDED" => "Quota exceeded",
        "INSUFFICIENT_SCOPE" => "Missing scope",
        "IP_NOT_ALLOWED" => "IP not allowed",
        "VERSION_RETIRED" => "Retired version",
        "EXPIRED" => "Expired",
        "REVOKED" => "Revoked",
        "DISABLED" => "Disabled",
        "NOT_FOUND" => "Not found",
        _ => "Malformed",
    }
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The smallest of 1, 2, 5 × 10^k at least `n` (the top of the y axis).
fn nice_max(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= n {
                return Ord::max(step.saturating_mul(m), 1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Links to the same page over other ranges.
#[component]
pub fn RangePicker(range: RangeView, #[prop(into)] base: String) -> impl IntoView {
    view! {
        <nav aria-label="Time range" class="inline-flex flex-wrap gap-1 rounded-lg bg-slate-100 p-1 text-sm dark:bg-slate-800">
            {range.choices.into_iter().map(|(value, text)| {
                let current = value == range.current;
                let href = format!("{base}?range={value}");
                view! {
                    <a href=href
                        aria-current=current.then_some("true")
                        class=if current {
                            "rounded-md bg-white px-3 py-1 font-medium shadow-sm dark:bg-slate-950"
                        } else {
                            "rounded-md px-3 py-1 text-slate-600 hover:text-slate-900 dark:text-slate-300 dark:hover:text-white"
                        }>
                        {text}
                    </a>
                }
            }).collect_view()}
        </nav>
    }
}

/// The chart, its legend and axes; an empty state when nothing was verified in the range.
#[component]
pub fn UsageChart(chart: ChartView, #[prop(into)] title: String) -> impl IntoView {
    let n = chart.buckets.len().max(1);
    let per = match chart.granularity.as_str() {
        "minute" => "per minute",
        "hour" => "per hour",
        _ => "per day",
    };
    let max = chart
        .buckets
        .iter()
        .map(|b| b.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let top = nice_max(max);
    let heading = format!("{title} ({per}, UTC)");
    let summary = format!(
        "{}: {} verifications in this range, at most {} in one bucket.",
        title,
        thousands(chart.total),
        thousands(max)
    );
    // About five labels on the time axis.
    let every = n.div_ceil(5).max(1);
    let ticks: Vec<(usize, String)> = chart
        .buckets
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, b)| (i, b.label.clone()))
        .collect();
    let summary2 = summary.clone();
    let series = chart.series.clone();
    let bars = chart
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let total: u64 = b.values.iter().sum();
            // "2026-11-28T11:00:00Z" -> "2026-11-28 11:00 UTC".
            let start = b.start.replace('T', " ");
            let start = start.trim_end_matches('Z');
            let start = start.strip_suffix(":00").unwrap_or(start);
            let mut tip = format!("{start} UTC — {} verifications", thousands(total));
            for (s, v) in series.iter().zip(&b.values) {
                if *v > 0 {
                    tip.push_str(&format!("\n{}: {}", s.label, thousands(*v)));
                }
            }
            let mut y = 100.0;
            let rects = series
                .iter()
                .zip(&b.values)
                .filter(|(_, v)| **v > 0)
                .map(|(s, v)| {
                    let h = *v as f64 / top as f64 * 100.0;
                    y -= h;
                    view! {
                        <rect x=format!("{:.3}", i as f64 + 0.12) width="0.76" y=format!("{y:.3}") height=format!("{h:.3}") fill=colour(&s.code) />
                    }
                })
                .collect_view();
            let tip2 = tip.clone();
            view! {
                <g data-tip=tip2 data-i=i.to_string()>
                    <title>{tip}</title>
                    // The whole column answers to the pointer, not only the coloured part.
                    <rect x=i.to_string() width="1" y="0" height="100" fill="transparent" />
                    {rects}
                </g>
            }
        })
        .collect_view();

    view! {
        <figure class="space-y-3" data-testid="usage-chart" data-total=chart.total.to_string()>
            <figcaption class="flex flex-wrap items-baseline justify-between gap-2">
                <span class="font-medium">{heading}</span>
                <span class="text-sm text-slate-600 dark:text-slate-400">{format!("{} verifications", thousands(chart.total))}</span>
            </figcaption>
            {if chart.total == 0 {
                view! {
                    <div class="rounded-lg border border-dashed border-slate-300 p-8 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">
                        <p class="font-medium text-slate-900 dark:text-slate-100">"No verifications in this range"</p>
                        <p class="mt-1">"Usage shows up here within seconds of your API verifying a key. See the " <a href="/docs#verify" class="font-medium text-indigo-600 hover:underline dark:text-indigo-400">"verification docs"</a> " to connect your API or gateway."</p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <ul class="flex flex-wrap gap-x-4 gap-y-1 text-xs" aria-label="Legend">
                        {chart.series.iter().map(|s| view! {
                            <li class="flex items-center gap-1.5">
                                <svg class="size-3" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill=colour(&s.code) /></svg>
                                <span>{s.label.clone()}</span>
                                <span class="text-slate-500 dark:text-slate-400">{thousands(s.total)}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                    <div class="flex gap-2">
                        <div class="flex h-48 w-12 shrink-0 flex-col justify-between text-right text-xs tabular-nums text-slate-500 dark:text-slate-400" aria-hidden="true">
                            <span class="-translate-y-1/2">{thousands(top)}</span>
                            <span>{thousands(top / 2)}</span>
                            <span class="translate-y-1/2">"0"</span>
                        </div>
                        <ChartHover>
                            <svg viewBox=format!("0 0 {n} 100") preserveAspectRatio="none" class="absolute inset-0 h-full w-full" role="img" aria-label=summary.clone()>
                                <line x1="0" x2=n.to_string() y1="0" y2="0" class="stroke-slate-200 dark:stroke-slate-800" vector-effect="non-scaling-stroke" />
                                <line x1="0" x2=n.to_string() y1="50" y2="50" class="stroke-slate-200 dark:stroke-slate-800" vector-effect="non-scaling-stroke" />
                                <line x1="0" x2=n.to_string() y1="100" y2="100" class="stroke-slate-300 dark:stroke-slate-700" vector-effect="non-scaling-stroke" />
                                {bars}
                            </svg>
                        </ChartHover>
                    </div>
                    // Tick labels placed by SVG attributes (percent of the width), not inline
                    // styles, so the page needs no 'unsafe-inline' in its style policy.
                    <div class="ml-14 h-4" aria-hidden="true">
                        <svg class="block h-4 w-full overflow-visible fill-slate-500 text-xs dark:fill-slate-400">
                            {ticks.into_iter().map(|(i, text)| view! {
                                <text x=format!("{:.2}%", i as f64 / n as f64 * 100.0) y="12">{text}</text>
                            }).collect_view()}
                        </svg>
                    </div>
                    <p class="sr-only">{summary2}</p>
                }.into_any()
            }}
            {(!chart.csv_href.is_empty()).then(|| view! {
                <p class="text-right text-xs"><a href=chart.csv_href.clone() download="" class="font-medium text-indigo-600 hover:underline dark:text-indigo-400">"Download CSV"</a></p>
            })}
        </figure>
    }
}

/// The plot area. After hydration, a tooltip follows the pointer over the bars (each bar's
/// `data-tip`); before it, the SVG `<title>`s give native tooltips.
#[island]
pub fn ChartHover(children: Children) -> impl IntoView {
    let tip = RwSignal::new(None::<(String, f64)>);
    #[cfg(feature = "hydrate")]
    let over = move |e: leptos::ev::PointerEvent| {
        use wasm_bindgen::JsCast;
        let found = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|el| el.closest("[data-tip]").ok().flatten())
            .and_then(|g| {
                let text = g.get_attribute("data-tip")?;
                let i: f64 = g.get_attribute("data-i")?.parse().ok()?;
                let n = g
                    .parent_element()?
                    .get_attribute("viewBox")?
                    .split(' ')
                    .nth(2)?
                    .parse::<f64>()
                    .ok()?;
                Some((text, (i + 0.5) / n * 100.0))
            });
        tip.set(found);
    };
    #[cfg(not(feature = "hydrate"))]
    let over = move |_: leptos::ev::PointerEvent| {};
    view! {
        <div class="relative h-48 flex-1" on:pointermove=over on:pointerleave=move |_| tip.set(None)>
            {children()}
            {move || tip.get().map(|(text, left)| view! {
                <div role="tooltip" class="pointer-events-none absolute top-2 z-10 -translate-x-1/2 whitespace-pre rounded-md bg-slate-900 px-2 py-1 text-xs text-white shadow-lg dark:bg-slate-100 dark:text-slate-900"
                    style:left=format!("clamp(4rem,{left:.2}%,calc(100% - 4rem))")>
                    {text}
                </div>
            })}
        </div>
    }
}
