//! What a system's processes cost, read from /proc: resident memory (sampled, the peak kept)
//! and CPU time (user + system, including reaped children) of a process and all its
//! descendants.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the memory of the tree is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// One reading of a process tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    pub rss_bytes: u64,
    /// In clock ticks.
    pub cpu_ticks: u64,
}

/// The pids of `root` and its descendants, from every process's parent in /proc.
fn tree(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![root];
    };
    let mut parent = HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = Stat::read(pid) {
            parent.insert(pid, stat.ppid);
        }
    }
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        let p = pids[i];
        pids.extend(parent.iter().filter(|&(_, &pp)| pp == p).map(|(&c, _)| c));
        i += 1;
    }
    pids
}

/// The fields of /proc/<pid>/stat used here.
struct Stat {
    ppid: u32,
    cpu_ticks: u64,
    rss_pages: u64,
}

impl Stat {
    fn read(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: fields start after the last ')'.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // Numbered as in proc(5), minus 3: state is field 3.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        Some(Self {
            ppid: u32::try_from(field(4)?).ok()?,
            cpu_ticks: field(14)? + field(15)? + field(16)? + field(17)?,
            rss_pages: field(24)?,
        })
    }
}

/// The tree's memory and CPU now.
pub fn read(root: u32, page_size: u64) -> Reading {
    tree(root)
        .into_iter()
        .filter_map(Stat::read)
        .fold(Reading::default(), |acc, s| Reading {
            rss_bytes: acc.rss_bytes + s.rss_pages * page_size,
            cpu_ticks: acc.cpu_ticks + s.cpu_ticks,
        })
}

/// Clock ticks per second and the page size, from `getconf` (the usual 100 and 4096 if it
/// is missing).
#[derive(Debug, Clone, Copy)]
pub struct Units {
    pub ticks_per_sec: u64,
    pub page_size: u64,
}

impl Units {
    pub fn detect() -> Self {
        let conf = |name: &str, default: u64| {
            std::process::Command::new("getconf")
                .arg(name)
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(default)
        };
        Self {
            ticks_per_sec: conf("CLK_TCK", 100),
            page_size: conf("PAGESIZE", 4096),
        }
    }
}

#[derive(Default)]
struct Peaks {
    overall: u64,
    window: u64,
}

/// Samples a process tree in the background until dropped.
pub struct Monitor {
    root: u32,
    units: Units,
    peaks: Arc<Mutex<Peaks>>,
    stop: CancellationToken,
}

/// What a measurement window cost.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub peak_rss_bytes: u64,
    pub cpu_seconds: f64,
}

impl Monitor {
    pub fn start(root: u32, units: Units) -> Self {
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let stop = CancellationToken::new();
        let (p, s) = (peaks.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            while s.run_until_cancelled(tick.tick()).await.is_some() {
                let rss = read(root, units.page_size).rss_bytes;
                let mut peaks = p.lock().unwrap_or_else(|e| e.into_inner());
                peaks.overall = peaks.overall.max(rss);
                peaks.window = peaks.window.max(rss);
            }
        });
        Self {
            root,
            units,
            peaks,
            stop,
        }
    }

    fn now(&self) -> Reading {
        read(self.root, self.units.page_size)
    }

    /// Starts a measurement window; [`Window::end`] gives its peak memory and CPU time.
    pub fn window(&self) -> Window<'_> {
        let now = self.now();
        let mut peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        peaks.window = now.rss_bytes;
        Window {
            monitor: self,
            cpu_ticks: now.cpu_ticks,
        }
    }

    /// The highest memory seen since the start.
    pub fn peak_rss_bytes(&self) -> u64 {
        let now = self.now().rss_bytes;
        let peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        peaks.overall.max(now)
    }

    /// Memory now.
    pub fn rss_bytes(&self) -> u64 {
        self.now().rss_bytes
    }

    /// Waits until the tree uses less than a tenth of a core (a system still working through
    /// requests the load generator gave up on would otherwise slow the next system down);
    /// false if it is still busy after `limit`.
    pub async fn settle(&self, limit: Duration) -> bool {
        const STEP: Duration = Duration::from_millis(500);
        let deadline = std::time::Instant::now() + limit;
        let mut last = self.now().cpu_ticks;
        loop {
            tokio::time::sleep(STEP).await;
            let now = self.now().cpu_ticks;
            let cores = now.saturating_sub(last) as f64
                / self.units.ticks_per_sec as f64
                / STEP.as_secs_f64();
            if cores < 0.1 {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            last = now;
        }
    }

    /// CPU time since the process started.
    pub fn cpu_seconds(&self) -> f64 {
        self.now().cpu_ticks as f64 / self.units.ticks_per_sec as f64
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub struct Window<'a> {
    monitor: &'a Monitor,
    cpu_ticks: u64,
}

impl Window<'_> {
    pub fn end(self) -> Usage {
        let now = self.monitor.now();
        let peaks = self.monitor.peaks.lock().unwrap_or_else(|e| e.into_inner());
        Usage {
            peak_rss_bytes: peaks.window.max(now.rss_bytes),
            cpu_seconds: now.cpu_ticks.saturating_sub(self.cpu_ticks) as f64
                / self.monitor.units.ticks_per_sec as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_its_tree_includes_a_child() {
        let units = Units::detect();
        let me = std::process::id();
        assert!(read(me, units.page_size).rss_bytes > 0);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        assert!(tree(me).contains(&child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
}
