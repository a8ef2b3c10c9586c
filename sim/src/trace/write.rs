//! Writing traces: records as JSON Lines, payloads through the compact serializer, large
//! parts once as `blob` lines, optionally compressed with zstd.

use super::cache::{BlobCache, CacheStats};
use super::compact::{self, Blobs, Limits};
use super::Record;
use crate::network::DropCause;
use crate::node::{Node, Output};
use crate::panics::Panic;
use serde::Serialize;
use std::io::{self, Write};

/// The zstd level of compressed traces: fast, and about 5 to 10 times smaller.
const ZSTD_LEVEL: i32 = 3;

enum Out {
    Plain(Box<dyn Write>),
    Zstd(zstd::stream::write::Encoder<'static, Box<dyn Write>>),
    /// Finished (or failed).
    Done,
}

/// Writes records as JSON Lines; remembers the first error instead of failing the run.
pub struct TraceSink {
    out: Out,
    error: Option<io::Error>,
    cache: BlobCache,
    line: Vec<u8>,
    written: u64,
}

/// What a sink wrote, for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Bytes of JSON Lines (before compression).
    pub bytes: u64,
    pub blobs: CacheStats,
}

impl TraceSink {
    /// A sink writing plain JSON Lines to `out` (buffer it: one write per record).
    pub fn new(out: Box<dyn Write>) -> Self {
        TraceSink {
            out: Out::Plain(out),
            error: None,
            cache: BlobCache::default(),
            line: Vec::new(),
            written: 0,
        }
    }

    /// A sink writing zstd-compressed JSON Lines (a `.jsonl.zst` file) to `out`.
    pub fn zstd(out: Box<dyn Write>) -> io::Result<Self> {
        let mut sink = TraceSink::new(Box::new(io::sink()));
        sink.out = Out::Zstd(zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?);
        Ok(sink)
    }

    /// A sink for a file: compressed if its name ends in `.zst`.
    pub fn create(path: &std::path::Path) -> io::Result<Self> {
        let file: Box<dyn Write> = Box::new(io::BufWriter::new(std::fs::File::create(path)?));
        if path.extension().is_some_and(|e| e == "zst") {
            TraceSink::zstd(file)
        } else {
            Ok(TraceSink::new(file))
        }
    }

    /// What was written so far.
    pub fn stats(&self) -> SinkStats {
        SinkStats {
            bytes: self.written,
            blobs: self.cache.stats,
        }
    }

    fn emit(&mut self, line: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let pending = std::mem::take(&mut self.cache.pending);
        let res = match &mut self.out {
            Out::Plain(w) => w.write_all(&pending).and_then(|_| w.write_all(line)),
            Out::Zstd(w) => w.write_all(&pending).and_then(|_| w.write_all(line)),
            Out::Done => Err(io::Error::other("the trace was already finished")),
        };
        self.written += (pending.len() + line.len()) as u64;
        self.cache.pending = pending;
        self.cache.pending.clear();
        if let Err(e) = res {
            self.error = Some(e);
        }
    }

    /// Append one record (its payloads are written as given).
    pub fn write(&mut self, record: &Record) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match serde_json::to_writer(&mut line, record) {
            Ok(()) => {
                line.push(b'\n');
                self.emit(&line);
            }
            Err(e) => {
                self.error.get_or_insert(io::Error::from(e));
            }
        }
        self.line = line;
    }

    /// Appends the compact text of a payload to `buf` (for the step being recorded; its blobs
    /// stay until [`TraceSink::write_step`]).
    pub fn encode<T: Serialize + ?Sized>(&mut self, value: &T, buf: &mut Vec<u8>) {
        self.cache.pin();
        if let Err(e) = compact::encode(value, buf, &mut self.cache, Limits::WRITER) {
            self.error.get_or_insert(io::Error::from(e));
        }
    }

    /// Appends one output of a step (not a send, not a mark) to `buf`, after a comma if `buf`
    /// holds outputs already.
    pub fn output<N: Node>(&mut self, buf: &mut Vec<u8>, out: &Output<N>) {
        self.cache.pin();
        if let Err(e) = output_text(buf, out, &mut self.cache, Limits::WRITER) {
            self.error.get_or_insert(io::Error::from(e));
        }
    }

    /// Appends the start of a send output (`{"send":{"to":..,"msg":..`); [`TraceSink::send_end`]
    /// adds what the network decided.
    pub fn send_begin<M: Serialize>(&mut self, buf: &mut Vec<u8>, to: usize, msg: &M) {
        if !buf.is_empty() {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"send\":{\"to\":");
        buf.extend_from_slice(itoa::Buffer::new().format(to).as_bytes());
        buf.extend_from_slice(b",\"msg\":");
        self.encode(msg, buf);
    }

    /// Ends a send output with its message id and fate.
    pub fn send_end(buf: &mut Vec<u8>, id: Option<u64>, lost: Option<DropCause>, dup: bool) {
        if let Some(id) = id {
            buf.extend_from_slice(b",\"id\":");
            buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        }
        if let Some(cause) = lost {
            buf.extend_from_slice(b",\"lost\":");
            serde_json::to_writer(&mut *buf, &cause).expect("a cause serializes");
        }
        if dup {
            buf.extend_from_slice(b",\"dup\":true");
        }
        buf.extend_from_slice(b"}}");
    }

    /// Writes a step record from the parts encoded for it: `input` and `reply` are JSON texts,
    /// `outputs` the outputs' texts separated by commas.
    #[allow(clippy::too_many_arguments)]
    pub fn write_step(
        &mut self,
        n: u64,
        t: u64,
        node: usize,
        inc: u32,
        input: &[u8],
        outputs: &[u8],
        reply: Option<&[u8]>,
        panic: Option<&Panic>,
    ) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let num = |line: &mut Vec<u8>, key: &[u8], n: u64| {
            line.extend_from_slice(key);
            line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        };
        num(&mut line, b"{\"type\":\"step\",\"n\":", n);
        num(&mut line, b",\"t\":", t);
        num(&mut line, b",\"node\":", node as u64);
        num(&mut line, b",\"inc\":", u64::from(inc));
        line.extend_from_slice(b",\"input\":");
        line.extend_from_slice(input);
        line.extend_from_slice(b",\"out\":[");
        line.extend_from_slice(outputs);
        line.push(b']');
        if let Some(r) = reply {
            line.extend_from_slice(b",\"reply\":");
            line.extend_from_slice(r);
        }
        if let Some(p) = panic {
            line.extend_from_slice(b",\"panic\":");
            serde_json::to_writer(&mut line, p).expect("a panic serializes");
        }
        line.extend_from_slice(b"}\n");
        self.emit(&line);
        self.cache.unpin();
        self.line = line;
    }

    /// Flush (and end the compressed stream); report the first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match std::mem::replace(&mut self.out, Out::Done) {
            Out::Plain(mut w) => w.flush(),
            Out::Zstd(z) => z.finish()?.flush(),
            Out::Done => Ok(()),
        }
    }
}

/// Appends the text of one output to `buf` (after a comma if `buf` is not empty), as the trace
/// records it: `{"send":{"to":1,"msg":..}}` (without the network's id and fate),
/// `{"timer":{..}}`, `{"cancel":3}`, `{"persist":..}`, `{"obs":..}` or `{"mark":..}`.
pub fn output_text<N: Node, B: Blobs>(
    buf: &mut Vec<u8>,
    out: &Output<N>,
    blobs: &mut B,
    limits: Limits,
) -> Result<(), serde_json::Error> {
    if !buf.is_empty() {
        buf.push(b',');
    }
    let num = |buf: &mut Vec<u8>, n: u64| {
        buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    };
    match out {
        Output::SetTimer { id, at, tag } => {
            buf.extend_from_slice(b"{\"timer\":{\"id\":");
            num(buf, *id);
            buf.extend_from_slice(b",\"at\":");
            num(buf, *at);
            buf.extend_from_slice(b",\"tag\":");
            num(buf, *tag);
            buf.extend_from_slice(b"}}");
        }
        Output::CancelTimer { id } => {
            buf.extend_from_slice(b"{\"cancel\":");
            num(buf, *id);
            buf.push(b'}');
        }
        Output::Persist(w) => {
            buf.extend_from_slice(b"{\"persist\":");
            compact::encode(w, buf, blobs, limits)?;
            buf.push(b'}');
        }
        Output::Sync => buf.extend_from_slice(b"{\"sync\":true}"),
        Output::Observe(o) => {
            buf.extend_from_slice(b"{\"obs\":");
            compact::encode(o, buf, blobs, limits)?;
            buf.push(b'}');
        }
        Output::Send { to, msg } => {
            buf.extend_from_slice(b"{\"send\":{\"to\":");
            num(buf, *to as u64);
            buf.extend_from_slice(b",\"msg\":");
            compact::encode(msg, buf, blobs, limits)?;
            buf.extend_from_slice(b"}}");
        }
        Output::Mark(m) => {
            buf.extend_from_slice(b"{\"mark\":");
            compact::write_str(buf, m.name);
            buf.extend_from_slice(b",\"context\":");
            num(buf, u64::from(m.context));
            buf.push(b'}');
        }
    }
    Ok(())
}
