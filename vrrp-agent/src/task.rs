//! A tokio task that stops when its owner lets go of it: check runners, raw-socket readers.
use tokio::task::JoinHandle;

/// Aborts the task when dropped.
#[derive(Debug)]
pub struct Stop(JoinHandle<()>);

impl Stop {
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
