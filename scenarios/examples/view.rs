//! `sim view` as an example binary, for the browser test until the CLI has the subcommand:
//! `cargo run --release --example view -- TRACE -o page.html` (or `--text TRACE`).
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "view")]
struct Args {
    #[command(flatten)]
    view: scenarios::view::ViewArgs,
}

fn main() {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(scenarios::view::run(&args.view));
}
