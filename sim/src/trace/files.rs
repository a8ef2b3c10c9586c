//! Trace files: plain JSON Lines or zstd-compressed (`.jsonl.zst`), told apart by their first
//! bytes, so every reader takes either.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// The first four bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Opens a trace file for reading, decompressing it if it is zstd.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    buffered(std::fs::File::open(path)?)
}

/// A trace stream (a file, a pipe) for reading, decompressed if it starts like zstd.
pub fn buffered<R: Read + 'static>(input: R) -> io::Result<Box<dyn BufRead>> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let head = input.fill_buf()?;
    if head.starts_with(&ZSTD_MAGIC) {
        let decoder = zstd::stream::read::Decoder::with_buffer(input)?;
        return Ok(Box::new(BufReader::with_capacity(1 << 16, decoder)));
    }
    Ok(Box::new(input))
}

/// True if `path` names a compressed trace (it ends in `.zst`).
pub fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}
