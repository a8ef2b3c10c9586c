//! The self-contained HTML page: styles, scripts and the data inline, no network access.

use super::model::{self, Model};
use serde_json::{json, Value};
use sim::trace::Trace;

const CSS: &str = include_str!("viewer.css");
const JS_DRAW: &str = include_str!("draw.js");
const JS_LIN: &str = include_str!("lin.js");
const JS_MAIN: &str = include_str!("viewer.js");

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text safe inside a `<script>` element: every `<` is written `\u003c` (valid JSON, since
/// `<` only occurs inside strings), so neither `</script>` nor `<!--` can appear.
pub fn script_json(v: &Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// The data blob the page reads: the view model plus every record (for payloads).
pub fn page_data(trace: &Trace, title: &str) -> Value {
    page_data_with(trace, title, 0)
}

/// The data blob of the part of a trace that [`super::load_window`] kept.
pub fn page_data_of(loaded: &super::Loaded, title: &str) -> Value {
    page_data_with(&loaded.trace, title, loaded.skipped)
}

/// The violation's account for the page (`crate::explain::Explanation::to_json`), its chain
/// events renumbered to the records the page holds (`rec` -1 for one left out of the window).
pub fn explain_json(e: &crate::explain::Explanation, skipped: usize) -> Value {
    let mut v = e.to_json();
    if let Some(chain) = v.get_mut("chain").and_then(Value::as_array_mut) {
        for c in chain {
            let pos = c["rec"].as_u64().unwrap_or(0) as usize;
            // The header (position 0) stays; the `skipped` records after it are left out.
            c["rec"] = if pos > skipped {
                json!(pos - skipped)
            } else {
                json!(-1)
            };
        }
    }
    v
}

fn page_data_with(trace: &Trace, title: &str, skipped: usize) -> Value {
    let m: Model = model::build(trace);
    let (seed, scenario, source, nodes) = trace.header();
    let records: Vec<Value> = trace
        .records
        .iter()
        .map(|(_, r)| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    let verdict = match trace.result() {
        None => "unfinished",
        Some((sim::Verdict::Ok, _)) => "ok",
        Some((sim::Verdict::Violation, _)) => "violation",
        Some((sim::Verdict::Unknown, _)) => "unknown",
    };
    json!({
        "title": title,
        "meta": {
            "seed": seed,
            "scenario": scenario.get("name").cloned().unwrap_or(Value::Null),
            "source": source,
            "verdict": verdict,
            "end": m.end,
            "median_delay": m.median_delay,
            "long_factor": model::LONG_FACTOR,
            "skipped": skipped,
        },
        "nodes": nodes,
        "ev": m.ev,
        "msgs": m.msgs,
        "kinds": m.kinds,
        "roles": m.roles,
        "marks": m.marks,
        "ops": m.ops,
        "dots": m.dots,
        "down": m.down,
        "periods": m.periods,
        "violation": m.violation,
        "lin": m.lin,
        "recs": records,
    })
}

/// The whole page for `trace`.
pub fn html_page(trace: &Trace, title: &str) -> String {
    page(&page_data(trace, title), title)
}

/// The page for the part of a trace that [`super::load_window`] kept.
pub fn html_page_of(loaded: &super::Loaded, title: &str) -> String {
    page(&page_data_of(loaded, title), title)
}

/// [`html_page_of`] with the violation's account: its facts, and its chain highlighted on
/// the lanes with previous/next stepping.
pub fn html_page_explained(
    loaded: &super::Loaded,
    title: &str,
    explanation: Option<&crate::explain::Explanation>,
) -> String {
    let mut data = page_data_of(loaded, title);
    if let Some(e) = explanation {
        data["explain"] = explain_json(e, loaded.skipped);
    }
    page(&data, title)
}

fn page(data: &Value, title: &str) -> String {
    let data = script_json(data);
    let t = escape_html(title);
    let mut page = String::with_capacity(data.len() + CSS.len() + 64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(&format!("<title>{t} · detsim trace</title>\n<style>\n"));
    page.push_str(CSS);
    page.push_str("</style>\n</head>\n<body>\n");
    page.push_str(&format!(
        "<header id=\"top\"><h1>{t}</h1><span id=\"meta\"></span></header>\n"
    ));
    page.push_str(concat!(
        "<div id=\"banner\" hidden><span id=\"banner-text\"></span>",
        "<button id=\"jump\" type=\"button\">Jump to event</button></div>\n",
        "<section id=\"explain\" hidden><h2>Why</h2><ul id=\"explain-facts\"></ul>",
        "<div id=\"chain-nav\"><button id=\"chain-prev\" type=\"button\">◀ previous</button>",
        "<span id=\"chain-pos\"></span>",
        "<button id=\"chain-next\" type=\"button\">next ▶</button>",
        "<span id=\"chain-how\"></span></div><ol id=\"chain-list\"></ol></section>\n",
        "<div id=\"filters\">",
        "<fieldset id=\"f-nodes\"><legend>Nodes</legend></fieldset>",
        "<fieldset id=\"f-kinds\"><legend>Messages</legend></fieldset>",
        "<fieldset id=\"f-time\"><legend>Time window (s)</legend>",
        "<label>from <input id=\"t-from\" type=\"number\" step=\"any\"></label> ",
        "<label>to <input id=\"t-to\" type=\"number\" step=\"any\"></label> ",
        "<button id=\"t-apply\" type=\"button\">Apply</button> ",
        "<button id=\"t-reset\" type=\"button\">Whole run</button></fieldset>",
        "<div id=\"legend\"></div></div>\n",
        "<main id=\"view\"><div id=\"labels\"></div>",
        "<div id=\"canvas-box\"><canvas id=\"lanes\"></canvas><div id=\"tip\" hidden></div></div>",
        "<aside id=\"side\"><h2>Details</h2><div id=\"details\">",
        "<p class=\"hint\">Hover or click an event or a message. Wheel zooms, drag pans.</p>",
        "</div></aside></main>\n",
        "<section id=\"lin\" hidden><h2>Linearizability</h2><p id=\"lin-reason\"></p>",
        "<canvas id=\"lin-canvas\"></canvas></section>\n",
    ));
    page.push_str("<script type=\"application/json\" id=\"trace-data\">");
    page.push_str(&data);
    page.push_str("</script>\n<script>\n\"use strict\";\n(function () {\n");
    page.push_str(JS_DRAW);
    page.push('\n');
    page.push_str(JS_LIN);
    page.push('\n');
    page.push_str(JS_MAIN);
    page.push_str("\n})();\n</script>\n</body>\n</html>\n");
    page
}
