//! The byte search: every needle at once, over a buffer or a stream of chunks, with line
//! numbers computed only where something was found.

use std::io::{self, Read};
use std::path::PathBuf;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Location, MIN_NEEDLE_CHARS, Needle};

/// How much of a file is inspected for a NUL byte to call it binary (as git and ripgrep do).
const BINARY_SNIFF_BYTES: usize = 8 * 1024;
/// How much of a file is read at once; a stream keeps `longest - 1` bytes of overlap.
pub(super) const CHUNK_BYTES: usize = 256 * 1024;

/// The needles compiled into one automaton. Holds the values only inside the automaton;
/// its Debug is never derived.
pub(super) struct Matcher {
    ac: AhoCorasick,
    /// For pattern `i`, the kinds of every needle with that value (two kinds may share
    /// one value: both are reported).
    kinds: Vec<Vec<&'static str>>,
    longest: usize,
}

/// A copy found in one file: where, and which kind.
pub(super) type Hit = (Location, &'static str);

impl Matcher {
    /// `None` when no needle is long enough to search for.
    pub(super) fn new(needles: &[Needle]) -> Option<Self> {
        let mut values: Vec<&[u8]> = Vec::new();
        let mut kinds: Vec<Vec<&'static str>> = Vec::new();
        for n in needles {
            // The value leaves its wrapper here: borrowed into the automaton, never shown.
            let value = n.value.expose();
            if value.chars().count() < MIN_NEEDLE_CHARS {
                continue;
            }
            if let Some(i) = values.iter().position(|v| *v == value.as_bytes()) {
                kinds[i].push(n.kind);
            } else {
                values.push(value.as_bytes());
                kinds.push(vec![n.kind]);
            }
        }
        let longest = values.iter().map(|v| v.len()).max()?;
        // Leftmost-first, non-overlapping: the fast packed (SIMD) searcher applies. Two
        // distinct 32-character values cannot sit in the same bytes of a real file.
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&values)
            .ok()?;
        Some(Self { ac, kinds, longest })
    }

    /// Searches a whole stream, `buf` reused between files. Binary streams (a NUL in the
    /// first 8 KiB) report byte offsets, text streams line numbers; returns whether it was
    /// binary. A read error ends the search with the hits found so far kept in `hits`.
    /// `size`, when known, saves the read that would only confirm the end (one system
    /// call per file, most files being one chunk).
    pub(super) fn search_stream(
        &self,
        mut reader: impl Read,
        size: Option<u64>,
        buf: &mut Vec<u8>,
        hits: &mut Vec<Hit>,
    ) -> io::Result<bool> {
        let overlap = self.longest - 1;
        // Scratch space: resized once per thread, never zeroed again.
        let cap = CHUNK_BYTES.max(overlap * 2);
        if buf.len() != cap {
            buf.resize(cap, 0);
        }
        // `kept` bytes at the front of `buf` are the tail of the previous chunk.
        let mut kept = 0usize;
        // File offset of buf[0], and newlines before it (text only).
        let mut base: u64 = 0;
        let mut lines_before: usize = 0;
        let mut binary = None;
        loop {
            let want = size.map_or(usize::MAX, |s| {
                usize::try_from(s.saturating_sub(base).saturating_sub(kept as u64))
                    .unwrap_or(usize::MAX)
            });
            let room = buf.len() - kept;
            let n = read_full(&mut reader, &mut buf[kept..kept + want.min(room)])?;
            let len = kept + n;
            let data = &buf[..len];
            let is_binary = *binary.get_or_insert_with(|| {
                memchr::memchr(0, &data[..len.min(BINARY_SNIFF_BYTES)]).is_some()
            });
            // Line counting walks forward from the last hit only.
            let (mut counted_to, mut line) = (0usize, lines_before);
            for m in self.ac.find_iter(data) {
                // A match inside the kept tail was found with the previous chunk.
                if m.end() <= kept {
                    continue;
                }
                let at = if is_binary {
                    Location::Offset(base + m.start() as u64)
                } else {
                    line += memchr::memchr_iter(b'\n', &data[counted_to..m.start()]).count();
                    counted_to = m.start();
                    Location::Line(line + 1)
                };
                for kind in &self.kinds[m.pattern().as_usize()] {
                    hits.push((at.clone(), kind));
                }
            }
            if n == 0 || len < buf.len() || want <= room {
                return Ok(is_binary);
            }
            // Keep the last `overlap` bytes so a value across the boundary is found.
            let consumed = len - overlap;
            if !is_binary {
                lines_before += memchr::memchr_iter(b'\n', &buf[..consumed]).count();
            }
            base += consumed as u64;
            buf.copy_within(consumed..len, 0);
            kept = overlap;
        }
    }

    /// A file *name* can hold a value too (a token cached as `token_<value>.json`): the
    /// shown path then carries `<kind>` in place of the value.
    pub(super) fn redact_path(&self, shown: PathBuf) -> PathBuf {
        let text = shown.to_string_lossy();
        if !self.ac.is_match(text.as_bytes()) {
            return shown;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in self.ac.find_iter(text.as_bytes()) {
            out.push_str(&text[last..m.start()]);
            out.push('<');
            out.push_str(&self.kinds[m.pattern().as_usize()].join("|"));
            out.push('>');
            last = m.end();
        }
        out.push_str(&text[last..]);
        PathBuf::from(out)
    }
}

/// Fills `buf` as far as the stream allows (a short read is not the end of a file).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
