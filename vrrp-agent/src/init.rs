//! As PID 1 (the agent as a container's entrypoint, as the seeds run keepalived in Docker):
//! check and notify scripts that leave background children behind orphan them to PID 1, and only
//! PID 1 can reap them; the agent's runtime reaps only the children it started, so they would
//! pile up as zombies. keepalived reaps every child for that reason. Here PID 1 forks: the parent
//! stays a minimal init (forwards the signals an operator sends to the agent, reaps everything,
//! exits with the agent's status) and the child runs the agent. Not PID 1, nothing changes.
use std::process::ExitCode;

use nix::{
    sys::{
        signal::{kill, SigSet, SigmaskHow, Signal},
        wait::{waitpid, WaitPidFlag, WaitStatus},
    },
    unistd::{fork, getpid, ForkResult, Pid},
};

/// The signals the init passes on to the agent.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
];

/// In PID 1 only: forks; the parent reaps and forwards until the agent exits, then returns its
/// exit code; the child returns `None` and goes on as the agent. Call before any thread starts.
pub fn become_init_if_pid_1() -> Option<ExitCode> {
    if getpid().as_raw() != 1 {
        return None;
    }
    let mut watched = SigSet::empty();
    for signal in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
        watched.add(signal);
    }
    // Blocked before the fork, so no signal is lost in between; the child unblocks them.
    let mut before = SigSet::empty();
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), Some(&mut before))
        .is_err()
    {
        return None;
    }
    // SAFETY: called before any other thread exists (main's first step that may start one), so
    // the child has the whole process state to itself.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
            None
        }
        Ok(ForkResult::Parent { child }) => Some(init(child, &watched)),
        Err(e) => {
            eprintln!("vrrp-agent: running as PID 1 without a reaper (fork failed: {e})");
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
            None
        }
    }
}

/// PID 1's loop: signals for the agent are passed on, children are reaped; ends with the agent.
fn init(agent: Pid, watched: &SigSet) -> ExitCode {
    loop {
        match watched.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap(agent) {
                    return code;
                }
            }
            Ok(signal) => {
                let _ = kill(agent, signal);
            }
            Err(_) => {}
        }
    }
}

/// Reaps every child that has exited; the agent's exit code once it is among them.
fn reap(agent: Pid) -> Option<ExitCode> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == agent => {
                return Some(ExitCode::from(u8::try_from(code).unwrap_or(1)));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == agent => {
                return Some(ExitCode::from(128 + signal as u8));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
