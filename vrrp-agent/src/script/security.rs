//! keepalived's checks on the program a script line names (`keepalived/core/notify.c`): found,
//! executable by its user, and, when it runs with root privileges, changeable by root only.
use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::{Identity, ScriptError};

/// keepalived's `_CS_PATH`, used when the agent has no `PATH`.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// keepalived's `find_path`: the first regular file in PATH this user may execute.
pub(super) fn search_path(name: &Path, id: Identity) -> Result<PathBuf, ScriptError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && executable(&m, id)))
        .ok_or_else(|| ScriptError::NotInPath(name.to_owned()))
}

/// keepalived's `is_executable`: the mode bits for this uid/gid (root needs any x bit).
pub(super) fn executable(meta: &fs::Metadata, id: Identity) -> bool {
    let mode = meta.mode();
    if id.uid == 0 {
        mode & 0o111 != 0
    } else if id.uid == meta.uid() {
        mode & 0o100 != 0
    } else if id.gid == meta.gid() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// keepalived guards a script that runs as root (user or group), or is set-uid/gid root.
pub(super) fn privileged(meta: &fs::Metadata, id: Identity) -> bool {
    let mode = meta.mode();
    id.uid == 0
        || id.gid == 0
        || (meta.uid() == 0 && mode & libc::S_IXUSR != 0 && mode & libc::S_ISUID != 0)
        || (meta.gid() == 0 && mode & libc::S_IXGRP != 0 && mode & libc::S_ISGID != 0)
}

/// keepalived's `check_security` on every prefix of `path` ("/", "/etc", "/etc/keepalived", …):
/// each must be root-owned, and a file or a directory without the sticky bit must not be
/// writable by a non-root group or by everyone. A symlink is judged by its owner only; unlike
/// keepalived we accept root-owned symlinked directories (merged /usr's /bin), since the path
/// they lead to is checked as well.
pub(super) fn check_path(path: &Path) -> Result<(), ScriptError> {
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        let meta = fs::symlink_metadata(&prefix).map_err(|source| not_found(&prefix, source))?;
        if let Some(reason) = insecurity(&meta) {
            return Err(ScriptError::Insecure {
                path: prefix,
                reason,
            });
        }
    }
    Ok(())
}

fn insecurity(meta: &fs::Metadata) -> Option<String> {
    let mode = meta.mode();
    let guarded = meta.is_file() || (meta.is_dir() && mode & libc::S_ISVTX == 0);
    if meta.uid() != 0 {
        Some(format!("is owned by uid {}", meta.uid()))
    } else if guarded && mode & 0o002 != 0 {
        Some("is writable by everyone".into())
    } else if guarded && meta.gid() != 0 && mode & 0o020 != 0 {
        Some(format!("is writable by group {}", meta.gid()))
    } else {
        None
    }
}

pub(super) fn not_found(path: &Path, source: io::Error) -> ScriptError {
    ScriptError::NotFound {
        path: path.to_owned(),
        source,
    }
}
