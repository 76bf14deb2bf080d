//! Inputs that can be read only once: standard input (`pack -`) and named
//! pipes. Planning reads the head of an input (the delimiter, the header
//! and sample rows for the column types) before the rows are read; for a
//! stream, what planning reads is kept in memory and replayed, so the
//! stream itself is read once, from start to end.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// The name of standard input among the inputs.
pub const STDIN: &str = "-";

/// Whether `path` is read as a stream: `-`, or anything that is neither a
/// regular file nor a directory (a named pipe, `/dev/stdin`, a process
/// substitution).
pub fn is_stream(path: &Path) -> bool {
    path.as_os_str() == STDIN || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

struct Source {
    /// Everything read from the stream so far by planning readers.
    head: Vec<u8>,
    /// The rest of the stream.
    live: Box<dyn Read + Send>,
    /// A reading reader took the stream: it cannot be opened again.
    taken: bool,
}

type Shared = Arc<Mutex<Source>>;

fn sources() -> &'static Mutex<HashMap<std::path::PathBuf, Shared>> {
    static S: OnceLock<Mutex<HashMap<std::path::PathBuf, Shared>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn source(path: &Path) -> std::io::Result<Shared> {
    let mut all = sources().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = all.get(path) {
        return Ok(s.clone());
    }
    let live: Box<dyn Read + Send> = if path.as_os_str() == STDIN {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    let s = Arc::new(Mutex::new(Source {
        head: Vec::new(),
        live,
        taken: false,
    }));
    all.insert(path.to_path_buf(), s.clone());
    Ok(s)
}

/// A reader over a stream. A peeking reader keeps what it pulls from the
/// stream for the readers after it; the reading one replays that, then
/// reads the stream directly.
struct StreamReader {
    source: Shared,
    pos: usize,
    peek: bool,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut s = self.source.lock().unwrap_or_else(|e| e.into_inner());
        if self.pos < s.head.len() {
            let n = buf.len().min(s.head.len() - self.pos);
            buf[..n].copy_from_slice(&s.head[self.pos..self.pos + n]);
            self.pos += n;
            if !self.peek && self.pos == s.head.len() {
                // Replayed: the memory is no longer needed.
                s.head = Vec::new();
                self.pos = usize::MAX;
            }
            return Ok(n);
        }
        if !self.peek {
            return s.live.read(buf);
        }
        let n = s.live.read(buf)?;
        s.head.extend_from_slice(&buf[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Why an input is opened: the two need different views of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Planning reads a head (delimiter, header, sample rows, schema);
    /// what it reads of a stream is kept for the rows pass.
    Plan,
    /// Reading the rows: a stream is taken, once.
    Rows,
}

/// Open `path` for `pass`: a file, or a view of a stream.
pub fn open(path: &Path, pass: Pass) -> std::io::Result<Box<dyn Read + Send>> {
    match pass {
        Pass::Plan => open_peek(path),
        Pass::Rows => open_read(path),
    }
}

/// Open `path` for planning: a file, or a replayable view of a stream.
fn open_peek(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    if !is_stream(path) {
        return Ok(Box::new(std::fs::File::open(path)?));
    }
    let source = source(path)?;
    if source.lock().unwrap_or_else(|e| e.into_inner()).taken {
        return Err(already_read());
    }
    Ok(Box::new(StreamReader {
        source,
        pos: 0,
        peek: true,
    }))
}

/// Open `path` to read its rows: a file, or the stream (once).
fn open_read(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    if !is_stream(path) {
        return Ok(Box::new(std::fs::File::open(path)?));
    }
    let source = source(path)?;
    {
        let mut s = source.lock().unwrap_or_else(|e| e.into_inner());
        if s.taken {
            return Err(already_read());
        }
        s.taken = true;
    }
    Ok(Box::new(StreamReader {
        source,
        pos: 0,
        peek: false,
    }))
}

fn already_read() -> std::io::Error {
    std::io::Error::other("a stream (standard input or a pipe) can be read only once; name it once")
}

/// The first bytes of an input (at most `n`), without consuming a stream.
pub fn head(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    open_peek(path)?.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pipe_is_read_once_with_its_head_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let writer = {
            let (fifo, data) = (fifo.clone(), data.clone());
            std::thread::spawn(move || std::fs::write(fifo, data).unwrap())
        };
        assert!(is_stream(&fifo));
        assert!(!is_stream(dir.path()), "a directory is not a stream");
        assert_eq!(head(&fifo, 10).unwrap(), data[..10]);
        let mut peek = Vec::new();
        open_peek(&fifo)
            .unwrap()
            .take(5000)
            .read_to_end(&mut peek)
            .unwrap();
        assert_eq!(peek, data[..5000]);
        let mut all = Vec::new();
        open_read(&fifo).unwrap().read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        assert!(open_read(&fifo).is_err() && open_peek(&fifo).is_err());
        writer.join().unwrap();
    }
}
