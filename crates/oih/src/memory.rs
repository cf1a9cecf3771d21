//! mimalloc's settings for a small footprint: commit arena memory as it is used rather than
//! up front, and hand freed memory back to the OS at once. They roughly halve the idle
//! resident memory of `oih serve` at no measured cost in throughput (docs/benchmarks.md).
//!
//! mimalloc reads its options only from the environment, once, as the process starts, and
//! setting them from code would need `unsafe`, which the workspace forbids. So when the
//! environment names neither option, the binary runs itself again, once, with them set
//! (same process id, arguments and everything else). An operator who sets either keeps
//! their choice.

use std::os::unix::process::CommandExt;

/// The options and the values the hub runs with unless told otherwise.
pub const SETTINGS: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "0"),
];

/// Re-executes the binary with [`SETTINGS`] in its environment, unless the environment
/// already names one of them. Returns only when it does not re-execute (or cannot).
pub fn apply_allocator_settings() {
    if SETTINGS
        .iter()
        .any(|(name, _)| std::env::var_os(name).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let err = command.args(args).envs(SETTINGS).exec();
    eprintln!("oih: running with mimalloc's default settings (could not re-execute: {err})");
}
