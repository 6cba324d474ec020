//! Standard output and standard error of the commands: [`outln!`] and
//! [`out!`] instead of `println!` and `print!`, [`errln!`] instead of
//! `eprintln!`; the `std` macros panic when the stream is a pipe whose
//! reader has gone (`tinygnn run … --json | head -c 10`) or a full device.
//!
//! When the reader of stdout is gone (a broken pipe), the rest of the output
//! is dropped and the command finishes its work (the files it writes are
//! still written) and exits as it would have, with no message: a consumer
//! that stops reading early is no error. Any other failure to write stdout
//! (e.g. a full disk behind a redirection) is reported by [`finish`] as an
//! error, exit status 1.
//!
//! Standard error carries only warnings and the final error message, so a
//! failure to write it is ignored: the command's work and its exit status
//! are the same whether stderr is a terminal, closed, a broken pipe or full
//! (`tests/io.rs` runs the CLI with `2>&-` and `2>/dev/full`).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set when a write to stdout failed: the rest of the output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// A failure other than a closed pipe, for [`finish`].
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

fn failed(e: io::Error) {
    CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != io::ErrorKind::BrokenPipe {
        if let Ok(mut f) = FAILURE.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

fn open() -> bool {
    !CLOSED.load(Ordering::Relaxed)
}

/// Writes `args` (and a newline when `newline`) to stdout, unless an
/// earlier write failed.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    if !open() {
        return;
    }
    let mut o = io::stdout().lock();
    let r = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = r {
        failed(e);
    }
}

/// Flushes stdout; an error if a write to it failed other than by a
/// closed pipe.
pub fn finish() -> anyhow::Result<()> {
    if open() {
        if let Err(e) = io::stdout().lock().flush() {
            failed(e);
        }
    }
    match FAILURE.lock().ok().and_then(|f| f.clone()) {
        Some(e) => anyhow::bail!("cannot write to standard output: {e}"),
        None => Ok(()),
    }
}

/// Writes `args` and a newline to stderr; a failed write is ignored (see
/// [`crate::out`]): never a panic.
pub fn err_line(args: fmt::Arguments<'_>) {
    let mut e = io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.write_all(b"\n"));
}

/// `println!` that neither panics nor fails on a closed stdout (see [`crate::out`]).
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` that neither panics nor fails on a closed stdout (see [`crate::out`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}

/// `eprintln!` that never panics: a write to stderr that fails is ignored
/// (see [`crate::out`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}
