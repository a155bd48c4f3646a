//! The registry's liveness: a panic in one of its handlers ends the process
//! (docs/protocol.md, rule 47), since the actor would otherwise be gone
//! while sockets and `/healthz` stayed up and no message moved. The
//! `/healthz` probe itself is the `Probe` message.

use std::cell::Cell;
use std::sync::Once;

/// The exit status after a registry panic (EX_SOFTWARE).
pub(crate) const REGISTRY_PANIC_EXIT_STATUS: i32 = 70;

thread_local! {
    /// True while this thread runs one of the registry's handlers.
    pub(super) static IN_REGISTRY: Cell<bool> = const { Cell::new(false) };
}

/// Makes a panic in a registry handler end the process (status 70, after
/// the usual panic report and a log line), so the platform restarts it:
/// the actor would otherwise be gone while sockets and `/healthz` stayed
/// up and no message moved. Installed once per process.
pub(crate) fn exit_on_registry_panic() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if IN_REGISTRY.get() {
                tracing::error!(panic = %info, "the room registry panicked: exiting so the platform restarts charla");
                std::process::exit(REGISTRY_PANIC_EXIT_STATUS);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::store::Store;

    /// A handler that panics, as a bug would.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Explode;

    impl Command for Explode {
        type Reply = ();

        fn run(self, _registry: &mut Registry, _ctx: &mut Context<Registry>) {
            panic!("a bug in a registry handler");
        }
    }

    /// Run by `a_registry_panic_ends_the_process` in a child process.
    #[test]
    #[ignore = "run in a child process by a_registry_panic_ends_the_process"]
    fn registry_panic_child() {
        actix::System::new().block_on(async {
            exit_on_registry_panic();
            let config = Arc::new(Config::defaults());
            let registry = Registry::new(
                config.clone(),
                Store::memory(config.history),
                Arc::default(),
                Arc::new(Metrics::new()),
                None,
            )
            .start();
            let _ = registry.send(Explode).await;
            // Only reached if the panic did not end the process.
            std::process::exit(0);
        });
    }

    #[test]
    fn a_registry_panic_ends_the_process() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "registry::liveness::tests::registry_panic_child",
                "--ignored",
                "--test-threads=1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(REGISTRY_PANIC_EXIT_STATUS));
    }
}
