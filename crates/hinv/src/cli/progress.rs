//! Timed phases with a spinner on stderr for phases that outlast a second
//! (only on a terminal, so pipes and CI logs stay clean).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs `f` as a named phase; returns its value and its wall time in seconds.
pub fn phase<T>(name: &str, f: impl FnOnce() -> T) -> (T, f64) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            b.set_style(style);
        }
        b.set_message(name.to_string());
        b.enable_steady_tick(Duration::from_millis(120));
        let shown = b.clone();
        // The spinner appears only once the phase has run for a second.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            if !shown.is_finished() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
            }
        });
        b
    });
    let t = Instant::now();
    let out = f();
    let secs = t.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    (out, secs)
}
