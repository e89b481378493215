fn main() {
    restore_sigpipe();
    std::process::exit(prodhome::run(std::env::args_os()));
}

/// Rust ignores SIGPIPE, which turns `prodhome status | head` into a panic
/// on the first write after `head` exits. A command-line tool should just
/// stop, as every Unix filter does.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs the default disposition; no handler code of ours
    // ever runs in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
