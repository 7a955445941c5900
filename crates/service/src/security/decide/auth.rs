//! etcd's authentication: what to do so that it is as spec.auth asks, and
//! what the AuthReady condition says. Pure.

/// What authenticating as root with the Secret's password showed (the service's own copy of
/// the client's answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdAuth {
    /// On, and root's password is the Secret's.
    Enabled,
    /// Off.
    Disabled,
    /// On, with another root password (data restored from another cluster's snapshot, or a
    /// password changed in etcd directly).
    RootPasswordDiffers,
}

/// What spec.auth asked and what etcd does after the operator's steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReport {
    /// spec.auth.enabled.
    pub wanted: bool,
    /// etcd's state after the steps, or why it is not known.
    pub now: Result<EtcdAuth, String>,
    /// The Secret with root's password.
    pub secret: String,
}

impl AuthReport {
    /// The AuthReady condition: (status, reason, message).
    pub fn condition(&self) -> (bool, &'static str, String) {
        auth_condition(self.wanted, &self.now, &self.secret)
    }
}

/// One change towards the auth the spec asks for; each is safe to repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// Create role root if missing.
    RootRole,
    /// Create user root with the Secret's password and the root role, if missing.
    RootUser,
    /// Create the operator's user (its certificate's common name) with the root role, if missing.
    OperatorUser,
    /// Turn authentication on.
    Enable,
    /// Set root's password to the Secret's.
    SetRootPassword,
    /// Turn authentication off (users and roles stay).
    Disable,
}

/// The steps from `now` to what the spec asks (`wanted`: spec.auth.enabled).
pub fn auth_steps(wanted: bool, now: &EtcdAuth) -> Vec<AuthStep> {
    use AuthStep::*;
    match (wanted, now) {
        // The users first: once authentication is on, the operator is let in by its user only.
        (true, EtcdAuth::Disabled) => vec![RootRole, RootUser, OperatorUser, Enable],
        // The Secret is the password's source of truth; the operator, a root user by its
        // certificate, can set it without knowing the old one.
        (true, EtcdAuth::RootPasswordDiffers) => vec![OperatorUser, SetRootPassword],
        (true, EtcdAuth::Enabled) | (false, EtcdAuth::Disabled) => Vec::new(),
        (false, EtcdAuth::Enabled | EtcdAuth::RootPasswordDiffers) => vec![Disable],
    }
}

/// The AuthReady condition: (status, reason, message). `now` is the state after the steps, or
/// why it could not be learnt.
pub fn auth_condition(
    wanted: bool,
    now: &Result<EtcdAuth, String>,
    secret: &str,
) -> (bool, &'static str, String) {
    match (wanted, now) {
        (_, Err(e)) => {
            (false, "AuthUnknown", format!("etcd's authentication could not be checked or changed: {e}"))
        }
        (true, Ok(EtcdAuth::Enabled)) => {
            (true, "Enabled", format!("authentication is on; root's password is in Secret {secret}"))
        }
        (false, Ok(EtcdAuth::Disabled)) => {
            (true, "Disabled", "authentication is off, as spec.auth asks".into())
        }
        (true, Ok(EtcdAuth::Disabled)) => (false, "Enabling", "authentication is being turned on".into()),
        (true, Ok(EtcdAuth::RootPasswordDiffers)) => (
            false,
            "RootPasswordDiffers",
            format!(
                "root's password in etcd is not the one in Secret {secret}; the operator sets it from the Secret"
            ),
        ),
        (false, Ok(_)) => (false, "Disabling", "authentication is being turned off".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_before_authentication_is_turned_on() {
        let steps = auth_steps(true, &EtcdAuth::Disabled);
        assert_eq!(steps.last(), Some(&AuthStep::Enable));
        assert!(steps.contains(&AuthStep::OperatorUser) && steps.contains(&AuthStep::RootUser));
        assert_eq!(auth_steps(true, &EtcdAuth::Enabled), []);
        assert_eq!(auth_steps(false, &EtcdAuth::Enabled), [AuthStep::Disable]);
    }

    #[test]
    fn a_restored_root_password_is_set_back_to_the_secrets() {
        assert_eq!(
            auth_steps(true, &EtcdAuth::RootPasswordDiffers),
            [AuthStep::OperatorUser, AuthStep::SetRootPassword]
        );
        let (ready, reason, message) =
            auth_condition(true, &Ok(EtcdAuth::RootPasswordDiffers), "demo-etcd-root");
        assert!(!ready);
        assert_eq!(reason, "RootPasswordDiffers");
        assert!(message.contains("Secret demo-etcd-root"), "{message}");
    }

    #[test]
    fn the_condition_never_shows_a_password() {
        let (_, _, message) = auth_condition(true, &Ok(EtcdAuth::Enabled), "demo-etcd-root");
        assert_eq!(message, "authentication is on; root's password is in Secret demo-etcd-root");
    }
}
