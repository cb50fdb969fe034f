//! Small helpers shared by modules: crash-safe file writes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary sibling a write goes to before the rename.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so concurrent writers never share one.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Makes a finished temp file durable and moves it over `path`: fsync the
/// file, rename (atomic on POSIX), fsync the folder so the rename survives a
/// crash. A reader sees the old file or the new one, never a partial one.
pub(crate) fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    let f = File::open(tmp).map_err(|e| Error::io(tmp, e))?;
    f.sync_all().map_err(|e| Error::io(tmp, e))?;
    drop(f);
    std::fs::rename(tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Error::io(path, e)
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Test hook, compiled only into test builds and under the
/// `fault-injection` feature (which the integration tests enable): with
/// `RECSYS_FAULT_AT=<stage>` in the environment the process stalls at that
/// stage (`loading`, `training`, `writing`, `promoting`) so a test can kill it
/// there. Release builds have no such hook: the function is empty.
#[inline]
pub(crate) fn fault_point(stage: &str) {
    #[cfg(any(test, feature = "fault-injection"))]
    if std::env::var_os("RECSYS_FAULT_AT").is_some_and(|v| v == stage) {
        // One write, so a reader waiting for the whole line sees it at once.
        let line = format!("fault point: stalled at {stage}\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    #[cfg(not(any(test, feature = "fault-injection")))]
    let _ = stage;
}

/// Writes `path` through a temp file + fsync + rename; on any error the temp
/// file is removed and `path` is untouched.
pub(crate) fn atomic_write<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        write(&mut w)?;
        w.flush().map_err(|e| Error::io(&tmp, e))?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            fault_point("writing");
            commit_temp(&tmp, path)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.bin");
        atomic_write(&p, |w| w.write_all(b"old").map_err(|e| Error::io("x", e))).unwrap();
        let err = atomic_write(&p, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::Other("disk full".into()))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
    }
}
