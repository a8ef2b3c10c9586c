//! `sim view`: a recorded trace as a self-contained HTML page (a space-time diagram on a
//! canvas) or as a text timeline for the terminal.
//!
//! The page embeds its scripts, styles and data; it needs no network access. The text
//! timeline is deterministic, for snapshot tests and `sim run --timeline`.

mod html;
pub mod model;
mod text;

pub use html::{
    escape_html, explain_json, html_page, html_page_explained, html_page_of, page_data,
    page_data_of, script_json,
};
pub use text::{text_timeline, Timeline};

use sim::trace::{files, Record, Trace, TraceReader};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// At most this many records are drawn on a page: for a longer trace, the last ones (where a
/// failing run stops), the header and the result record included. A page of that many events
/// still loads and pans in a browser; the text timeline (`--text`) always covers the whole run.
pub const PAGE_RECORDS: usize = 250_000;
/// A page shows strings up to this many characters and byte strings up to this many bytes
/// (longer ones are cut: a page has no use for a whole snapshot).
pub const PAGE_TEXT: usize = 300;

/// Arguments of `sim view`.
#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// A trace written by `sim run --trace` (plain or `.zst`).
    pub trace: PathBuf,
    /// Write the HTML page here (default: the trace's path with the extension `.html`).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Print a text timeline to stdout instead of writing a page.
    #[arg(long)]
    pub text: bool,
}

/// The part of a trace a page draws.
pub struct Loaded {
    /// The header and the records drawn, payloads expanded and cut ([`PAGE_TEXT`]).
    pub trace: Trace,
    /// Records in the whole trace.
    pub total: usize,
    /// Records left out before the ones drawn.
    pub skipped: usize,
}

/// Opens a trace file (plain or zstd); the error is `FILE: line N: problem`.
pub fn open(path: &Path) -> Result<TraceReader<Box<dyn BufRead>>, String> {
    let file = path.display();
    let input = files::open(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    TraceReader::new(input).map_err(|e| format!("{file}: {e}"))
}

/// Reads and checks a whole trace file (for small traces); the error is `FILE: line N: problem`.
pub fn load(path: &Path) -> Result<Trace, String> {
    load_window(path, usize::MAX).map(|l| l.trace)
}

/// Reads and checks a trace file as a stream, keeping the last `max` records (payloads cut
/// for people); the error is `FILE: line N: problem`.
pub fn load_window(path: &Path, max: usize) -> Result<Loaded, String> {
    let file = path.display();
    let mut reader = open(path)?;
    let nodes = reader.header().3.len();
    let mut kept: VecDeque<(usize, Record)> = VecDeque::new();
    let (mut total, mut skipped) = (0, 0);
    while let Some(next) = reader.next_record() {
        let (line, r) = next.map_err(|e| format!("{file}: {e}"))?;
        model::check_record(nodes, line, &r).map_err(|e| format!("{file}: {e}"))?;
        let r = brief(&reader, r, PAGE_TEXT);
        total += 1;
        kept.push_back((line, r));
        // The header stays first.
        if kept.len() > max.max(2) {
            kept.remove(1);
            skipped += 1;
        }
    }
    let format = reader.format();
    Ok(Loaded {
        trace: Trace {
            records: kept.into(),
            format,
        },
        total,
        skipped,
    })
}

/// The text timeline of a trace file, read as a stream.
pub fn timeline_file(path: &Path, width: usize) -> Result<String, String> {
    let file = path.display();
    let mut reader = open(path)?;
    let nodes = reader.header().3.len();
    let mut tl = Timeline::new(reader.header_record());
    while let Some(next) = reader.next_record() {
        let (line, r) = next.map_err(|e| format!("{file}: {e}"))?;
        model::check_record(nodes, line, &r).map_err(|e| format!("{file}: {e}"))?;
        if !matches!(r, Record::Header { .. }) {
            tl.push(&brief(&reader, r, usize::MAX));
        }
    }
    Ok(tl.finish(width))
}

/// A record with its payloads expanded, strings and byte strings cut at `max`.
pub fn expand<R: BufRead>(reader: &TraceReader<R>, r: Record, max: usize) -> Record {
    brief(reader, r, max)
}

fn brief<R: BufRead>(reader: &TraceReader<R>, mut r: Record, max: usize) -> Record {
    if let Record::Step {
        input, out, reply, ..
    } = &mut r
    {
        match input {
            sim::trace::StepInput::Deliver { msg: v, .. }
            | sim::trace::StepInput::Input { input: v } => *v = reader.resolve_brief(v, max),
            _ => {}
        }
        for o in out.iter_mut() {
            *o = reader.resolve_brief(o, max);
        }
        if let Some(x) = reply {
            *x = reader.resolve_brief(x, max);
        }
    }
    r
}

/// Terminal width for the text timeline: `COLUMNS` if set, else 120.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// The default page for a trace: `run.jsonl` and `run.jsonl.zst` give `run.html`.
pub fn page_path(trace: &Path) -> PathBuf {
    let mut p = trace.to_path_buf();
    if files::is_compressed(&p) {
        p.set_extension("");
    }
    p.with_extension("html")
}

/// Runs `sim view`; returns the exit code (0 ok, 2 bad input).
pub fn run(args: &ViewArgs) -> i32 {
    if args.text {
        return match timeline_file(&args.trace, width()) {
            Ok(text) => {
                print!("{text}");
                print!("{}", crate::explain::account_text(&args.trace));
                0
            }
            Err(e) => {
                eprintln!("error: {}", one_line(&e));
                2
            }
        };
    }
    let loaded = match load_window(&args.trace, PAGE_RECORDS) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            return 2;
        }
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| page_path(&args.trace));
    let title = args
        .trace
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    // The account reads the whole trace again (the page keeps a window, payloads cut); an
    // explanation that cannot be built leaves the page without one.
    let explanation = crate::explain::explain_file(&args.trace)
        .ok()
        .flatten()
        .map(|(e, _)| e);
    let page = html_page_explained(&loaded, &title, explanation.as_ref());
    if let Err(e) = std::fs::write(&out, page) {
        eprintln!(
            "error: {}: cannot write: {}",
            out.display(),
            one_line(&e.to_string())
        );
        return 2;
    }
    if loaded.skipped > 0 {
        println!(
            "wrote {} (the last {} of {} records: a page draws at most {PAGE_RECORDS}; `sim view --text` shows the whole run); open it in a browser",
            out.display(),
            loaded.total - loaded.skipped,
            loaded.total
        );
    } else {
        println!(
            "wrote {} ({} records); open it in a browser",
            out.display(),
            loaded.total
        );
    }
    0
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}
