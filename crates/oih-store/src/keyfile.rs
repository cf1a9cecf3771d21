//! Secrets kept as files in the data directory (the Secret Service's generated master key, the
//! orchestrator's step-token key): created once with mode 0600, never overwritten, and read
//! back on every start so that what they protect stays readable across restarts.

use std::io::Write as _;
use std::path::Path;

/// Reads a key file, warning when other users may read it.
pub fn read(path: &Path) -> std::io::Result<String> {
    warn_if_readable_by_others(path);
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

/// Reads the key at `path`, first creating it with `generate()` when it does not exist. The
/// flag is true when this call created it (the caller says what to back up). Two processes
/// starting together end up with the same key: the second reads the first one's file.
pub fn read_or_create(
    path: &Path,
    generate: impl FnOnce() -> String,
) -> std::io::Result<(String, bool)> {
    if path.exists() {
        return Ok((read(path)?, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            let secret = generate();
            file.write_all(format!("{secret}\n").as_bytes())?;
            file.sync_all()?;
            Ok((secret, true))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok((read(path)?, false)),
        Err(err) => Err(err),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "a key file is accessible to other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("k");
        let (first, created) = read_or_create(&path, || "one".into()).expect("create");
        assert_eq!((first.as_str(), created), ("one", true));
        let (again, created) = read_or_create(&path, || "two".into()).expect("read");
        assert_eq!((again.as_str(), created), ("one", false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
