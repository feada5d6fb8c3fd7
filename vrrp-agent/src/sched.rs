//! Realtime scheduling for the agent's thread (keepalived's `vrrp_rt_priority`), so adverts go
//! out and Master_Down fires on time while other processes saturate the CPUs.

use std::io;

/// Puts the calling thread (the agent's only one) under SCHED_RR at `priority` (1..=99). With
/// SCHED_RESET_ON_FORK, so the scripts and notify commands it starts run with normal priority.
pub fn realtime(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority.into(),
    };
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
    let ret =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root only (CAP_SYS_NICE); in a thread of its own so the harness's threads are untouched.
    #[test]
    fn realtime_thread_starts_children_with_normal_scheduling() {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "skipping realtime_thread_starts_children_with_normal_scheduling: needs root"
            );
            return;
        }
        std::thread::spawn(|| {
            realtime(1).expect("SCHED_RR");
            // SAFETY: pid 0 is the calling thread.
            let policy = unsafe { libc::sched_getscheduler(0) };
            assert_eq!(policy & !libc::SCHED_RESET_ON_FORK, libc::SCHED_RR);
            // `chrt -p $$` names the shell's policy: the child must not inherit ours.
            let out = std::process::Command::new("sh")
                .args(["-c", "chrt -p $$"])
                .output()
                .expect("sh");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("SCHED_OTHER"), "{text}");
        })
        .join()
        .unwrap();
    }
}
