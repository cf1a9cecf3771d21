//! Unpacking an uploaded archive (`.zip`, `.tgz`, `.tar.gz`) or reading a directory into
//! `(path, bytes)` pairs of its `*.json` files, in memory (OIH unpacked to a temp directory).
//! Every limit is checked while reading, so a zip bomb or a huge entry is refused early.

use std::io::{Cursor, Read};
use std::path::Path;

/// Caps on what an import may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_archive_bytes: u64,
    pub max_unpacked_bytes: u64,
    pub max_file_bytes: u64,
    pub max_entries: usize,
}

/// A `*.json` file found in the archive; `path` is relative to its root, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("Unsupported archive type: {0} (expected .zip, .tgz or .tar.gz)")]
    UnsupportedType(String),
    #[error("Archive is larger than {0} bytes")]
    TooLarge(u64),
    #[error("Archive holds more than {0} entries")]
    TooManyEntries(usize),
    #[error("{0} is larger than {1} bytes")]
    FileTooLarge(String, u64),
    #[error("Archive unpacks to more than {0} bytes")]
    UnpackedTooLarge(u64),
    #[error("Archive entry {0} has an unsafe path")]
    UnsafePath(String),
    #[error("Archive could not be read: {0}")]
    Corrupt(String),
    #[error("Archive contains no .json files")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    TarGz,
}

/// The archive type from the file name, as OIH's `getFileType`.
pub fn kind_of(filename: &str) -> Result<Kind, ArchiveError> {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        Ok(Kind::Zip)
    } else if lower.ends_with(".tgz") || lower.ends_with(".tar.gz") {
        Ok(Kind::TarGz)
    } else {
        Err(ArchiveError::UnsupportedType(filename.to_owned()))
    }
}

/// Reads the `*.json` files of an archive held in memory.
pub fn unpack(filename: &str, bytes: &[u8], limits: &Limits) -> Result<Vec<File>, ArchiveError> {
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(ArchiveError::TooLarge(limits.max_archive_bytes));
    }
    let mut budget = Budget::new(limits);
    match kind_of(filename)? {
        Kind::Zip => unpack_zip(bytes, &mut budget),
        Kind::TarGz => unpack_tgz(bytes, &mut budget),
    }?;
    budget.finish()
}

/// Reads a directory (recursively) or an archive file from disk.
pub fn read_path(path: &Path, limits: &Limits) -> Result<Vec<File>, ArchiveError> {
    let io = |e: std::io::Error| ArchiveError::Corrupt(format!("{}: {e}", path.display()));
    if path.is_dir() {
        let mut budget = Budget::new(limits);
        walk(path, "", &mut budget)?;
        return budget.finish();
    }
    let name = path.to_string_lossy();
    kind_of(&name)?;
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limits.max_archive_bytes {
        return Err(ArchiveError::TooLarge(limits.max_archive_bytes));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    unpack(&name, &bytes, limits)
}

/// Counts entries and bytes against the limits and keeps the JSON files.
struct Budget {
    limits: Limits,
    entries: usize,
    unpacked: u64,
    files: Vec<File>,
}

impl Budget {
    fn new(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            entries: 0,
            unpacked: 0,
            files: Vec::new(),
        }
    }

    fn entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries(self.limits.max_entries));
        }
        Ok(())
    }

    /// Reads one file (at most the per-file limit plus one byte, to notice a larger one).
    fn file(&mut self, path: String, reader: impl Read) -> Result<(), ArchiveError> {
        let cap = self.limits.max_file_bytes;
        let mut bytes = Vec::new();
        reader
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ArchiveError::Corrupt(format!("{path}: {e}")))?;
        if bytes.len() as u64 > cap {
            return Err(ArchiveError::FileTooLarge(path, cap));
        }
        self.unpacked += bytes.len() as u64;
        if self.unpacked > self.limits.max_unpacked_bytes {
            return Err(ArchiveError::UnpackedTooLarge(
                self.limits.max_unpacked_bytes,
            ));
        }
        self.files.push(File { path, bytes });
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<File>, ArchiveError> {
        if self.files.is_empty() {
            return Err(ArchiveError::Empty);
        }
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(self.files)
    }
}

/// The entry's path as `/`-separated segments, refusing absolute paths, `..` and drive
/// prefixes. None for entries that are not wanted (not `*.json`, or hidden such as
/// `__MACOSX/` and `._x.json` metadata).
fn entry_path(raw: &str) -> Result<Option<String>, ArchiveError> {
    let unsafe_path = || ArchiveError::UnsafePath(raw.to_owned());
    let normalized = raw.replace('\\', "/");
    if normalized.starts_with('/') || normalized.contains(':') {
        return Err(unsafe_path());
    }
    let mut segments = Vec::new();
    for segment in normalized.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(unsafe_path()),
            s => segments.push(s),
        }
    }
    let hidden = segments
        .iter()
        .any(|s| s.starts_with('.') || *s == "__MACOSX");
    let json = segments
        .last()
        .is_some_and(|s| s.to_ascii_lowercase().ends_with(".json"));
    Ok((json && !hidden).then(|| segments.join("/")))
}

fn unpack_zip(bytes: &[u8], budget: &mut Budget) -> Result<(), ArchiveError> {
    let corrupt = |e: zip::result::ZipError| ArchiveError::Corrupt(e.to_string());
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(corrupt)?;
    if zip.len() > budget.limits.max_entries {
        return Err(ArchiveError::TooManyEntries(budget.limits.max_entries));
    }
    for index in 0..zip.len() {
        budget.entry()?;
        let entry = zip.by_index(index).map_err(corrupt)?;
        let raw = entry.name().map_err(corrupt)?.into_owned();
        // Checked before anything else so that a traversal attempt is refused even when the
        // entry is a directory or a non-JSON file.
        let path = entry_path(&raw)?;
        if entry.is_dir() || entry.is_symlink() {
            continue;
        }
        if let Some(path) = path {
            budget.file(path, entry)?;
        }
    }
    Ok(())
}

fn unpack_tgz(bytes: &[u8], budget: &mut Budget) -> Result<(), ArchiveError> {
    let corrupt = |e: std::io::Error| ArchiveError::Corrupt(e.to_string());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in tar.entries().map_err(corrupt)? {
        budget.entry()?;
        let entry = entry.map_err(corrupt)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry_path(&raw)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if let Some(path) = path {
            budget.file(path, entry)?;
        }
    }
    Ok(())
}

fn walk(dir: &Path, prefix: &str, budget: &mut Budget) -> Result<(), ArchiveError> {
    let io = |e: std::io::Error| ArchiveError::Corrupt(format!("{}: {e}", dir.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        budget.entry()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // Symlinks are skipped: an import reads only what lies under the directory.
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() && !rel.split('/').any(|s| s.starts_with('.')) {
            walk(&entry.path(), &rel, budget)?;
        } else if kind.is_file()
            && let Some(path) = entry_path(&rel)?
        {
            let file = std::fs::File::open(entry.path()).map_err(io)?;
            budget.file(path, file)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_checked() {
        assert_eq!(
            entry_path("a/b.json").expect("ok").as_deref(),
            Some("a/b.json")
        );
        assert_eq!(
            entry_path("./a/./b.JSON").expect("ok").as_deref(),
            Some("a/b.JSON")
        );
        assert_eq!(entry_path("a/readme.md").expect("ok"), None);
        assert_eq!(entry_path("__MACOSX/a/._b.json").expect("ok"), None);
        assert!(entry_path("../x.json").is_err());
        assert!(entry_path("a/../../x.json").is_err());
        assert!(entry_path("/etc/x.json").is_err());
        assert!(entry_path("C:\\x.json").is_err());
        assert!(entry_path("a\\..\\..\\x.json").is_err());
    }

    #[test]
    fn archive_type_comes_from_the_file_name() {
        assert_eq!(kind_of("a.zip").expect("zip"), Kind::Zip);
        assert_eq!(kind_of("a.TGZ").expect("tgz"), Kind::TarGz);
        assert_eq!(kind_of("a.tar.gz").expect("tgz"), Kind::TarGz);
        assert!(kind_of("a.rar").is_err());
    }

    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            zip.start_file(*name, options).expect("entry");
            zip.write_all(content).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    }

    #[test]
    fn limits_are_enforced_while_unpacking() {
        let limits = Limits {
            max_archive_bytes: 1 << 20,
            max_unpacked_bytes: 3000,
            max_file_bytes: 2000,
            max_entries: 3,
        };
        let big = vec![b' '; 2001];
        let err = unpack("a.zip", &zip(&[("a.json", &big)]), &limits).expect_err("file cap");
        assert!(matches!(err, ArchiveError::FileTooLarge(..)), "{err}");
        let half = vec![b' '; 1600];
        let two = zip(&[("a.json", &half), ("b.json", &half)]);
        let err = unpack("a.zip", &two, &limits).expect_err("total cap");
        assert!(matches!(err, ArchiveError::UnpackedTooLarge(_)), "{err}");
        let many: Vec<(&str, &[u8])> = ["a.json", "b.json", "c.json", "d.json"]
            .iter()
            .map(|n| (*n, b"{}".as_slice()))
            .collect();
        let err = unpack("a.zip", &zip(&many), &limits).expect_err("entry cap");
        assert!(matches!(err, ArchiveError::TooManyEntries(3)), "{err}");
        let small = Limits {
            max_archive_bytes: 10,
            ..limits
        };
        let err = unpack("a.zip", &zip(&[("a.json", b"{}")]), &small).expect_err("archive cap");
        assert!(matches!(err, ArchiveError::TooLarge(10)), "{err}");
        let files = unpack(
            "a.zip",
            &zip(&[("x/a.json", b"{}"), ("x/b.txt", b"")]),
            &limits,
        )
        .expect("unpacks");
        assert_eq!(
            files,
            vec![File {
                path: "x/a.json".into(),
                bytes: b"{}".to_vec()
            }]
        );
    }
}
