//! Small blocking readers shared by the object store and the archive backends.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::RepoError;

/// Reads the byte range `[start, end)` of a file with positional reads, so several readers can
/// share one file handle without a lock or seek races.
#[derive(Debug)]
pub(crate) struct RangeReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl RangeReader {
    pub(crate) fn new(file: Arc<File>, start: u64, len: u64) -> Result<Self, RepoError> {
        let end =
            start.checked_add(len).ok_or_else(|| RepoError::Corrupt(format!("byte range {start}+{len} overflows")))?;
        Ok(RangeReader { file, pos: start, end })
    }

    /// Fails with [`RepoError::Corrupt`] (naming `what`) when the range does not lie within the
    /// file as it is now, e.g. after the file was truncated: better found before an answer
    /// starts than after its headers went out.
    pub(crate) fn check_within_file(&self, what: &str) -> Result<(), RepoError> {
        let len = self.file.metadata()?.len();
        if self.end > len {
            return Err(RepoError::Corrupt(format!(
                "{what}: its data (bytes {}..{}) lies beyond the end of its file ({len} bytes); the file is truncated or the index is wrong",
                self.pos, self.end
            )));
        }
        Ok(())
    }

    /// The first `N` bytes of the range (fewer if the range is shorter).
    pub(crate) fn peek<const N: usize>(&self) -> io::Result<([u8; N], usize)> {
        let mut head = [0u8; N];
        let want = (self.end.saturating_sub(self.pos)).min(N as u64) as usize;
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut head[got..want], self.pos + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        Ok((head, got))
    }
}

/// Whether `head` (the first two bytes of a stream) is a valid zlib header for deflate data
/// without a preset dictionary (RFC 1950 section 2.2).
pub(crate) fn is_zlib_header(head: &[u8]) -> bool {
    let [cmf, flg] = match head {
        [a, b, ..] => [*a, *b],
        _ => return false,
    };
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0 && flg & 0x20 == 0
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Fails the read (instead of silently truncating or over-running) when the inner reader does
/// not produce exactly `expected` bytes, and optionally when the CRC-32 differs.
#[derive(Debug)]
pub(crate) struct CheckedReader<R> {
    inner: R,
    expected: u64,
    done: u64,
    crc: Option<(flate2::Crc, u32)>,
    finished: bool,
}

impl<R: Read> CheckedReader<R> {
    pub(crate) fn new(inner: R, expected: u64, crc32: Option<u32>) -> Self {
        CheckedReader { inner, expected, done: 0, crc: crc32.map(|c| (flate2::Crc::new(), c)), finished: false }
    }
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished || buf.is_empty() {
            return Ok(0);
        }
        // Ask for at most one byte more than expected so an over-long payload (e.g. a
        // decompression bomb) is detected without reading it all.
        let room = self.expected.saturating_sub(self.done).saturating_add(1);
        let want = room.min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            if self.done != self.expected {
                return Err(invalid_data(format!("object data ends after {} of {} bytes", self.done, self.expected)));
            }
            if let Some((crc, wanted)) = &self.crc
                && crc.sum() != *wanted
            {
                return Err(invalid_data(format!("CRC-32 mismatch: {:08x} != {wanted:08x}", crc.sum())));
            }
            self.finished = true;
            return Ok(0);
        }
        self.done += n as u64;
        if self.done > self.expected {
            return Err(invalid_data(format!("object data is longer than the expected {} bytes", self.expected)));
        }
        if let Some((crc, _)) = &mut self.crc {
            crc.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Rejects anything but `len` lowercase hex digits, so keys can be used in file and entry
/// names without further checks.
pub(crate) fn validate_hex_key(key: &str, len: usize) -> Result<(), RepoError> {
    if key.len() == len && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(RepoError::InvalidKey(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(content: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        Arc::new(f)
    }

    #[test]
    fn range_reader_reads_range() {
        let f = temp_file(b"0123456789");
        let mut out = String::new();
        RangeReader::new(f.clone(), 2, 5).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "23456");
        // Past the end of the file: short, the checked wrapper turns it into an error.
        let r = RangeReader::new(f, 8, 5).unwrap();
        let mut out = Vec::new();
        let err = CheckedReader::new(r, 5, None).read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn range_within_file_and_peek() {
        let f = temp_file(b"0123456789");
        let inside = RangeReader::new(f.clone(), 2, 8).unwrap();
        assert!(inside.check_within_file("x").is_ok());
        assert_eq!(inside.peek::<3>().unwrap(), (*b"234", 3));
        let beyond = RangeReader::new(f.clone(), 8, 5).unwrap();
        let err = beyond.check_within_file("object k").unwrap_err();
        assert!(matches!(&err, RepoError::Corrupt(m) if m.starts_with("object k:")), "{err}");
        assert_eq!(beyond.peek::<4>().unwrap().1, 2);
    }

    #[test]
    fn zlib_headers() {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"data").unwrap();
        let z = enc.finish().unwrap();
        assert!(is_zlib_header(&z));
        assert!(!is_zlib_header(&[z[0], z[1] ^ 1]));
        assert!(!is_zlib_header(&[0, 0]));
        assert!(!is_zlib_header(&[0x78]));
    }

    #[test]
    fn checked_reader_length_and_crc() {
        let data = b"hello world";
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let mut out = Vec::new();
        CheckedReader::new(&data[..], 11, Some(crc.sum())).read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        for (len, sum) in [(10, None), (12, None), (11, Some(crc.sum() ^ 1))] {
            let mut out = Vec::new();
            let err = CheckedReader::new(&data[..], len, sum).read_to_end(&mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn hex_keys() {
        assert!(validate_hex_key(&"a".repeat(64), 64).is_ok());
        assert!(validate_hex_key("0123456789abcdef", 16).is_ok());
        for bad in [
            "A".repeat(64),
            "a".repeat(63),
            "a".repeat(65),
            format!("../{}", "a".repeat(61)),
            format!("{}g", "a".repeat(63)),
            String::new(),
        ] {
            assert!(matches!(validate_hex_key(&bad, 64), Err(RepoError::InvalidKey(_))));
        }
    }
}
