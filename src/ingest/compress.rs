//! Compressed text inputs (`cell_towers.csv.gz` as OpenCelliD publishes
//! it), decompressed as they are read. The codec is told by the file's
//! first bytes, not its name, so a `.csv` that is really gzip still reads.

use std::io::Read;
use std::path::Path;

/// A compression format of text inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Not compressed.
    Plain,
    /// gzip (RFC 1952), multi-member files included.
    Gzip,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
}

/// File-name suffixes of compressed files, stripped to find the format
/// inside (`towers.csv.gz` is CSV).
const SUFFIXES: [&str; 5] = ["gz", "gzip", "zst", "zstd", "bz2"];

impl Codec {
    /// The codec whose magic number starts `head`.
    pub fn of_magic(head: &[u8]) -> Codec {
        match head {
            [0x1f, 0x8b, ..] => Codec::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Codec::Zstd,
            [b'B', b'Z', b'h', ..] => Codec::Bzip2,
            _ => Codec::Plain,
        }
    }
}

/// The extension that names a file's format, under any compression
/// suffix: `csv` for `towers.csv.gz`.
pub fn inner_extension(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let mut parts: Vec<&str> = name.split('.').skip(1).collect();
    while parts.len() > 1 && parts.last().is_some_and(|e| SUFFIXES.contains(e)) {
        parts.pop();
    }
    parts.last().map(|e| e.to_string())
}

/// Open a text input for `pass` (see [`super::stream`] for how a stream
/// is read once), decompressing it if its first bytes say it is
/// compressed.
pub fn open_text(path: &Path, pass: super::stream::Pass) -> std::io::Result<Box<dyn Read + Send>> {
    use std::io::BufRead;
    let mut f = std::io::BufReader::with_capacity(1 << 20, super::stream::open(path, pass)?);
    let codec = Codec::of_magic(f.fill_buf()?);
    Ok(match codec {
        Codec::Plain => Box::new(f),
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(f)),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
        Codec::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(f)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn compression_suffixes_are_looked_through() {
        let ext = |s: &str| inner_extension(Path::new(s));
        assert_eq!(ext("cell_towers.csv.gz").as_deref(), Some("csv"));
        assert_eq!(ext("a.b.TSV.zst").as_deref(), Some("tsv"));
        assert_eq!(ext("x.parquet").as_deref(), Some("parquet"));
        assert_eq!(ext("x.gz").as_deref(), Some("gz"));
        assert_eq!(ext("noext"), None);
    }

    #[test]
    fn every_codec_reads_back_the_text() {
        let text = b"lon,lat\n1.5,2.5\n".repeat(1000);
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        let gz = dir.path().join("t.csv.gz");
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(&text).unwrap();
        e.finish().unwrap();
        files.push((gz, Codec::Gzip));
        let zst = dir.path().join("t.csv.zst");
        std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();
        files.push((zst, Codec::Zstd));
        let bz = dir.path().join("t.csv.bz2");
        let mut e = bzip2::write::BzEncoder::new(
            std::fs::File::create(&bz).unwrap(),
            bzip2::Compression::fast(),
        );
        e.write_all(&text).unwrap();
        e.finish().unwrap();
        files.push((bz, Codec::Bzip2));
        let plain = dir.path().join("t.csv");
        std::fs::write(&plain, &text).unwrap();
        files.push((plain, Codec::Plain));
        for (f, codec) in files {
            let head = std::fs::read(&f).unwrap();
            assert_eq!(Codec::of_magic(&head), codec, "{}", f.display());
            let mut back = Vec::new();
            open_text(&f, super::super::stream::Pass::Rows)
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, text, "{}", f.display());
        }
    }

    #[test]
    fn a_truncated_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("t.csv.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&b"lon,lat\n1,2\n".repeat(5000)).unwrap();
        let bytes = e.finish().unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let mut back = Vec::new();
        assert!(
            open_text(&gz, super::super::stream::Pass::Rows)
                .unwrap()
                .read_to_end(&mut back)
                .is_err()
        );
    }
}
