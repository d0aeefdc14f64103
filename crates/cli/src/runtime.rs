//! The async runtime: tokio's current-thread scheduler when the process has one worker (asked
//! for, or all the CPU it may use), the multi-thread scheduler otherwise.

/// Which tokio scheduler runs the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheduler {
    /// One thread drives every task: none of the multi-thread scheduler's cross-thread
    /// bookkeeping (work stealing, wake-ups of idle workers). Blocking work keeps its own pool.
    CurrentThread,
    /// `Some(n)` workers, or tokio's default (one per CPU the process may use).
    MultiThread(Option<usize>),
}

/// `--worker-threads` wins; without it, a process that may use only one CPU (its affinity mask,
/// or a cgroup `cpu.max` quota below two CPUs) gets the current-thread scheduler, since a second
/// worker could only take turns with the first.
fn scheduler(worker_threads: Option<usize>, usable_cpus: usize) -> Scheduler {
    match worker_threads {
        Some(0 | 1) => Scheduler::CurrentThread,
        Some(n) => Scheduler::MultiThread(Some(n)),
        None if usable_cpus <= 1 => Scheduler::CurrentThread,
        None => Scheduler::MultiThread(None),
    }
}

/// The CPUs this process may use: std reads the affinity mask and the cgroup quota (v1 and
/// v2) on Linux.
fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Builds the runtime for `--worker-threads` (`None`: not given).
pub(crate) fn build(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match scheduler(worker_threads, usable_cpus()) {
        Scheduler::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Scheduler::MultiThread(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = n {
                b.worker_threads(n);
            }
            b
        }
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_decides_when_given() {
        assert_eq!(scheduler(Some(1), 8), Scheduler::CurrentThread);
        assert_eq!(scheduler(Some(0), 8), Scheduler::CurrentThread);
        assert_eq!(scheduler(Some(4), 1), Scheduler::MultiThread(Some(4)));
    }

    #[test]
    fn one_usable_cpu_means_the_current_thread_scheduler() {
        assert_eq!(scheduler(None, 1), Scheduler::CurrentThread);
        assert_eq!(scheduler(None, 2), Scheduler::MultiThread(None));
    }
}
