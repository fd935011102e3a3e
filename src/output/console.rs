//! The console: standard output (the summary, listings, the files written) and standard error
//! (progress lines, warnings, errors). A reader that goes away early (`peakload run … | head`,
//! `2>&1 | head`) has read what it wanted: the command goes on, writes every file and exits
//! with its own code, where `print!` and `eprint!` panicked on the closed pipe and took the
//! report and the exit code with them. Any other write error (a full disk under a redirect)
//! stops that stream too; standard output's is said on standard error at the end.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static OUT_CLOSED: AtomicBool = AtomicBool::new(false);
static ERR_CLOSED: AtomicBool = AtomicBool::new(false);
static OUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes to standard output; see the module.
pub fn out(args: fmt::Arguments<'_>) {
    if let Err(e) = write(&OUT_CLOSED, io::stdout().lock(), args) {
        if let Ok(mut first) = OUT_ERROR.lock() {
            first.get_or_insert(e.to_string());
        }
    }
}

/// Writes to standard error; see the module.
pub fn err(args: fmt::Arguments<'_>) {
    let _ = write(&ERR_CLOSED, io::stderr().lock(), args);
}

/// The first error other than a closed pipe that standard output gave, if any.
pub fn out_error() -> Option<String> {
    OUT_ERROR.lock().ok().and_then(|e| e.clone())
}

/// Writes unless the stream already failed; a failure closes it for the rest of the process.
/// A closed pipe is no error: the reader had what it wanted.
fn write(closed: &AtomicBool, mut to: impl Write, args: fmt::Arguments<'_>) -> io::Result<()> {
    if closed.load(Ordering::Relaxed) {
        return Ok(());
    }
    match to.write_fmt(args).and_then(|()| to.flush()) {
        Ok(()) => Ok(()),
        Err(e) => {
            closed.store(true, Ordering::Relaxed);
            if e.kind() == io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// `print!` that a closed pipe does not crash.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::console::out(format_args!($($arg)*)) };
}

/// `println!` that a closed pipe does not crash.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::console::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::console::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that a closed pipe does not crash.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::console::err(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails like a pipe whose reader left, or like a full disk.
    struct Failing(io::ErrorKind, usize);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.1 += 1;
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_no_error_and_closes_the_stream() {
        let closed = AtomicBool::new(false);
        let mut pipe = Failing(io::ErrorKind::BrokenPipe, 0);
        assert!(write(&closed, &mut pipe, format_args!("summary")).is_ok());
        assert!(closed.load(Ordering::Relaxed));
        // Nothing more is tried.
        assert!(write(&closed, &mut pipe, format_args!("more")).is_ok());
        assert_eq!(pipe.1, 1);
    }

    #[test]
    fn another_error_is_returned_once() {
        let closed = AtomicBool::new(false);
        let mut disk = Failing(io::ErrorKind::StorageFull, 0);
        let e = write(&closed, &mut disk, format_args!("summary")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(write(&closed, &mut disk, format_args!("more")).is_ok());
        assert_eq!(disk.1, 1);
    }

    #[test]
    fn what_is_written_arrives_whole() {
        let closed = AtomicBool::new(false);
        let mut buf = Vec::new();
        write(&closed, &mut buf, format_args!("{} of {}\n", 3, 4)).unwrap();
        assert_eq!(buf, b"3 of 4\n");
    }
}
