//! Threads for picture work: one per core, living as long as the process.
//!
//! A decode takes up to hundreds of megabytes, and the allocator keeps what a thread frees
//! for that thread's next use. Spread over the blocking pool, whose threads come and go by
//! the hundred under a burst of uploads, each thread that ever decoded would keep a
//! picture's worth; on a few threads of their own, the same memory serves every decode.
//! The threads also bound how many pictures are worked on at once.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Where jobs wait for a thread; `None` if no thread could be started.
static JOBS: LazyLock<Option<mpsc::Sender<Job>>> = LazyLock::new(start);

/// How many threads work on pictures: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn start() -> Option<mpsc::Sender<Job>> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for index in 0..threads() {
        let queue = queue.clone();
        let thread =
            std::thread::Builder::new().name(format!("confab-pictures-{index}")).spawn(move || {
                loop {
                    // One idle thread waits on the queue at a time; the others wait for it.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A job that panics loses its answer (its caller hears of it), not the thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            });
        match thread {
            Ok(_) => started += 1,
            Err(error) => tracing::error!(%error, "could not start a thread for picture work"),
        }
    }
    (started > 0).then_some(jobs)
}

/// Runs `work` on a picture thread once one is free; `None` if it panicked or there are no
/// threads.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    JOBS.as_ref()?.send(job).ok()?;
    answer.await.ok()
}
