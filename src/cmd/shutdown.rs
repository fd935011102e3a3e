//! Where a run's stop requests come from: the process's signals (Ctrl-C, SIGTERM) in the
//! binary, or a [`CancellationToken`] when a test or an embedding program drives the run.
//!
//! The run asks [`Shutdown::requested`] in its loop: the first request drains and writes
//! results, a second one (signals only) exits at once.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

pub struct Shutdown {
    source: Source,
}

enum Source {
    Signals {
        sigterm: Signal,
    },
    /// Fires once, when the token is cancelled.
    Token {
        token: CancellationToken,
        fired: bool,
    },
}

impl Shutdown {
    /// Ctrl-C and SIGTERM; must be called inside the runtime.
    pub fn from_signals() -> std::io::Result<Shutdown> {
        Ok(Shutdown {
            source: Source::Signals {
                sigterm: signal(SignalKind::terminate())?,
            },
        })
    }

    /// Stops when `token` is cancelled (once).
    pub fn from_token(token: CancellationToken) -> Shutdown {
        Shutdown {
            source: Source::Token {
                token,
                fired: false,
            },
        }
    }

    /// Completes at the next stop request; never, once a token has fired.
    pub async fn requested(&mut self) {
        match &mut self.source {
            Source::Signals { sigterm } => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = sigterm.recv() => {}
                }
            }
            Source::Token { token, fired } => {
                if *fired {
                    std::future::pending::<()>().await;
                }
                token.cancelled().await;
                *fired = true;
            }
        }
    }
}
