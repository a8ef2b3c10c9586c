//! `sim view`: a recorded trace as a self-contained HTML page (a space-time diagram on a
//! canvas) or as a text timeline for the terminal.
//!
//! The page embeds its scripts, styles and data; it needs no network access. The text
//! timeline is deterministic, for snapshot tests and `sim run --timeline`.

mod html;
pub mod model;
mod text;

pub use html::{escape_html, html_page, page_data, script_json};
pub use text::text_timeline;

use sim::trace::Trace;
use std::path::{Path, PathBuf};

/// Arguments of `sim view`.
#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// A trace written by `sim run --trace`.
    pub trace: PathBuf,
    /// Write the HTML page here (default: the trace's path with the extension `.html`).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Print a text timeline to stdout instead of writing a page.
    #[arg(long)]
    pub text: bool,
}

/// Reads and checks a trace file; the error is `FILE: line N: problem`.
pub fn load(path: &Path) -> Result<Trace, String> {
    let file = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("{file}: line {line}: not valid UTF-8")
    })?;
    let trace = Trace::parse(&text).map_err(|e| format!("{file}: {e}"))?;
    model::check(&trace).map_err(|e| format!("{file}: {e}"))?;
    Ok(trace)
}

/// Terminal width for the text timeline: `COLUMNS` if set, else 120.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// Runs `sim view`; returns the exit code (0 ok, 2 bad input).
pub fn run(args: &ViewArgs) -> i32 {
    let trace = match load(&args.trace) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            return 2;
        }
    };
    if args.text {
        print!("{}", text_timeline(&trace, width()));
        return 0;
    }
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.trace.with_extension("html"));
    let title = args
        .trace
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    let page = html_page(&trace, &title);
    if let Err(e) = std::fs::write(&out, page) {
        eprintln!(
            "error: {}: cannot write: {}",
            out.display(),
            one_line(&e.to_string())
        );
        return 2;
    }
    println!(
        "wrote {} ({} records); open it in a browser",
        out.display(),
        trace.records.len()
    );
    0
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}
