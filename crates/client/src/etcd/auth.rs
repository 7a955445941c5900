//! etcd's authentication: its state, the users and the root role. Every
//! call here is safe to repeat: it looks before it writes, so a check that
//! finds everything in place changes nothing (no revision is spent).

use etcd_client::{Client, UserAddOptions};

use super::{EtcdClient, Idempotent};
use crate::ClientError;

/// Whether etcd checks who calls, as seen by authenticating as root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthState {
    /// Authentication is on and root's password is the one given.
    Enabled,
    /// Authentication is off.
    Disabled,
    /// Authentication is on, and root's password is not the one given (for example data
    /// restored from another cluster's snapshot).
    RootPasswordDiffers,
}

/// etcd's role that may do everything (membership, maintenance, auth).
pub const ROOT_ROLE: &str = "root";

impl EtcdClient {
    /// Authenticates as `user` with `password` to learn whether authentication is on.
    pub async fn auth_state(&self, user: &str, password: &str) -> Result<AuthState, ClientError> {
        let (user, password) = (user.to_owned(), password.to_owned());
        let result = self
            .call("authenticate", None, Idempotent::Yes, |c: Client| {
                let (user, password) = (user.clone(), password.clone());
                async move { c.auth_client().authenticate(user, password).await }
            })
            .await;
        match result {
            Ok(_) => Ok(AuthState::Enabled),
            Err(ClientError::Etcd(m)) if m.contains("authentication is not enabled") => {
                Ok(AuthState::Disabled)
            }
            Err(ClientError::Etcd(m)) if m.contains("invalid user ID or password") => {
                Ok(AuthState::RootPasswordDiffers)
            }
            Err(e) => Err(e),
        }
    }

    /// Makes sure role `root` exists.
    pub async fn ensure_root_role(&self) -> Result<(), ClientError> {
        let found = self
            .call("role_get", None, Idempotent::Yes, |mut c| async move { c.role_get(ROOT_ROLE).await })
            .await;
        match found {
            Ok(_) => Ok(()),
            Err(ClientError::Etcd(m)) if m.contains("role name not found") => self
                .call("role_add", None, Idempotent::No, |mut c| async move { c.role_add(ROOT_ROLE).await })
                .await
                .map(drop),
            Err(e) => Err(e),
        }
    }

    /// Makes sure `user` exists with the root role: with `password`, or with none (a user known
    /// by its client certificate's common name).
    pub async fn ensure_root_user(&self, user: &str, password: Option<&str>) -> Result<(), ClientError> {
        let name = user.to_owned();
        let found = self
            .call("user_get", None, Idempotent::Yes, |mut c| {
                let name = name.clone();
                async move { c.user_get(name).await }
            })
            .await;
        let roles = match found {
            Ok(resp) => resp.roles().to_vec(),
            Err(ClientError::Etcd(m)) if m.contains("user name not found") => {
                let (name, password) = (name.clone(), password.unwrap_or_default().to_owned());
                let no_password = password.is_empty();
                self.call("user_add", None, Idempotent::No, |mut c| {
                    let (name, password) = (name.clone(), password.clone());
                    let options = no_password.then(|| UserAddOptions::new().with_no_pwd());
                    async move { c.user_add(name, password, options).await }
                })
                .await?;
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        if !roles.iter().any(|r| r == ROOT_ROLE) {
            self.call("user_grant_role", None, Idempotent::No, |mut c| {
                let name = name.clone();
                async move { c.user_grant_role(name, ROOT_ROLE).await }
            })
            .await?;
        }
        Ok(())
    }

    /// Sets a user's password.
    pub async fn set_password(&self, user: &str, password: &str) -> Result<(), ClientError> {
        let (user, password) = (user.to_owned(), password.to_owned());
        self.call("user_change_password", None, Idempotent::Yes, |mut c| {
            let (user, password) = (user.clone(), password.clone());
            async move { c.user_change_password(user, password).await }
        })
        .await
        .map(drop)
    }

    /// Turns authentication on (etcd ignores the request when it is on already).
    pub async fn enable_auth(&self) -> Result<(), ClientError> {
        self.call("auth_enable", None, Idempotent::Yes, |mut c| async move { c.auth_enable().await })
            .await
            .map(drop)
    }

    /// Turns authentication off.
    pub async fn disable_auth(&self) -> Result<(), ClientError> {
        self.call("auth_disable", None, Idempotent::Yes, |mut c| async move { c.auth_disable().await })
            .await
            .map(drop)
    }
}
