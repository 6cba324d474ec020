//! Every file the CLI writes goes through here: [`check_outputs`] before any
//! work (an output may not be one of the command's inputs), then [`write`]
//! (a temporary file in the destination's directory, synced, then renamed
//! over the destination).
//!
//! So a write that fails half way (a full disk, a file size limit, a
//! destination that is a directory) leaves the previous file as it was and
//! no temporary file behind, and a reader never sees a half-written file.
//! A destination that is a symbolic link is written where the link points
//! (the link stays); a file that is replaced keeps its permissions.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Result};

/// Refuses a command whose `outputs` include one of its `inputs` (or the
/// same file twice): the same path once canonicalized (symbolic links and
/// `..` resolved) or, on Unix, the same file through a hard link. Call it
/// before any work, so that nothing is read from a file about to be replaced.
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<()> {
    for (k, out) in outputs.iter().enumerate() {
        for inp in inputs {
            if same_file(out, inp) {
                bail!(
                    "refusing to write {}: it is the input {} of this command (give another output path)",
                    out.display(),
                    inp.display()
                );
            }
        }
        for other in &outputs[..k] {
            if same_file(out, other) {
                bail!(
                    "refusing to write {} twice: {} is the same file",
                    other.display(),
                    out.display()
                );
            }
        }
    }
    Ok(())
}

/// The path a write to `p` ends at: canonical when it exists, else its
/// canonical directory and file name, else `p` itself.
fn identity(p: &Path) -> PathBuf {
    if let Ok(c) = fs::canonicalize(p) {
        return c;
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (fs::canonicalize(dir), p.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => p.to_path_buf(),
    }
}

/// Whether `a` and `b` name the same file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    if identity(a) == identity(b) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// Writes `bytes` to `path` safely (see the module docs).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// [`write`] with the contents written by `fill` into the temporary file.
/// On any error the temporary file is removed and the destination is left
/// as it was; the error names the destination.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let dest = destination(path);
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| anyhow!("cannot write {}: not a file name", path.display()))?;
    let (tmp, mut file) = temp_file(&dir, &name.to_string_lossy())
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    let result = (|| {
        fill(&mut file)?;
        if let Ok(m) = fs::metadata(&dest) {
            if m.is_file() {
                file.set_permissions(m.permissions())?;
            }
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &dest)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        let kept = if dest.exists() {
            format!(" ({} is unchanged)", path.display())
        } else {
            String::new()
        };
        bail!("cannot write {}: {e}{kept}", path.display());
    }
    // The rename is durable once the directory is synced (best effort: not
    // every platform or file system can open a directory).
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Where a write to `path` goes: the file a symbolic link points to, else `path`.
fn destination(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// A new file `.NAME.tmp-PID-N` in `dir`.
fn temp_file(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.bin");
        write(&p, b"first").unwrap();
        write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(names(d.path()), ["out.bin"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.bin");
        fs::write(&p, b"old contents").unwrap();
        let e = write_with(&p, |f| {
            f.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("cannot write") && msg.contains("disk full"),
            "{msg}"
        );
        assert!(msg.contains("is unchanged"), "{msg}");
        assert_eq!(fs::read(&p).unwrap(), b"old contents");
        assert_eq!(names(d.path()), ["out.bin"]);
        // A destination that is a directory: an error, the directory stays.
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        assert!(write(&sub, b"x").is_err());
        assert!(sub.is_dir());
        assert_eq!(names(d.path()), ["out.bin", "sub"]);
        // A directory that does not exist.
        let e = write(&d.path().join("no/such/dir.bin"), b"x").unwrap_err();
        assert!(e.to_string().contains("cannot write"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn links_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target.bin");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.path().join("link.bin");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // Outputs that are inputs, however they are named.
        let hard = d.path().join("hard.bin");
        fs::hard_link(&target, &hard).unwrap();
        let dotted = d.path().join("sub/../target.bin");
        fs::create_dir(d.path().join("sub")).unwrap();
        for out in [&target, &link, &hard, &dotted] {
            let e = check_outputs(&[out], &[&target]).unwrap_err();
            assert!(e.to_string().contains("refusing to write"), "{e}");
        }
        let other = d.path().join("other.bin");
        check_outputs(&[&other], &[&target]).unwrap();
        assert!(check_outputs(&[&other, &other], &[]).is_err());
    }
}
