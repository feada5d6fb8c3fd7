//! Who a script runs as: keepalived's choice of user, looked up in the system's user database.
use nix::unistd::{Gid, Group, Uid, User};

use super::ScriptError;
use crate::config::ScriptUser;

/// keepalived's default script user when neither `user` nor `script_user` names one.
const DEFAULT_USER: &str = "keepalived_script";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

impl Identity {
    /// The agent's own real ids: keepalived's fallback when `keepalived_script` does not exist.
    fn current() -> Self {
        Self {
            uid: Uid::current().as_raw(),
            gid: Gid::current().as_raw(),
        }
    }
}

/// `user [group]`, else `keepalived_script` if it exists, else the agent's own user (refused
/// under `enable_script_security`, which wants scripts off root unless asked for).
pub fn identity(user: Option<&ScriptUser>, security: bool) -> Result<Identity, ScriptError> {
    let id = match user {
        Some(ScriptUser { user, group }) => {
            let found = lookup_user(user)?.ok_or_else(|| ScriptError::UnknownUser(user.clone()))?;
            let gid = match group {
                None => found.gid,
                Some(g) if g.starts_with(':') => {
                    return Err(ScriptError::SupplementaryGroups(g.clone()))
                }
                Some(g) => lookup_group(g)?.ok_or_else(|| ScriptError::UnknownGroup(g.clone()))?,
            };
            Identity {
                uid: found.uid,
                gid,
            }
        }
        None => match lookup_user(DEFAULT_USER)? {
            Some(id) => id,
            None if security => return Err(ScriptError::NoDefaultUser),
            None => Identity::current(),
        },
    };
    if !Uid::effective().is_root() && id != Identity::current() {
        return Err(ScriptError::NotRoot(id));
    }
    Ok(id)
}

fn lookup_user(name: &str) -> Result<Option<Identity>, ScriptError> {
    let found = not_found_is_none(name, User::from_name(name))?;
    Ok(found.map(|u| Identity {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }))
}

fn lookup_group(name: &str) -> Result<Option<u32>, ScriptError> {
    Ok(not_found_is_none(name, Group::from_name(name))?.map(|g| g.gid.as_raw()))
}

/// getpwnam_r(3) allows these errors to mean "no such name" too, depending on the NSS module.
fn not_found_is_none<T>(
    name: &str,
    found: nix::Result<Option<T>>,
) -> Result<Option<T>, ScriptError> {
    use nix::errno::Errno;
    match found {
        Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => Ok(None),
        Err(errno) => Err(ScriptError::Lookup {
            name: name.to_owned(),
            source: errno.into(),
        }),
        Ok(found) => Ok(found),
    }
}
