//! Carrying out spec.auth: the root user's Secret, then the users, the root
//! role and authentication itself, through the operator's own connection (its
//! client certificate makes it the user `etcd-operator`).

use etcd_operator_api::EtcdCluster;
use etcd_operator_client::etcd::{AuthState, EtcdClient};
use etcd_operator_resource::templates::tls::root_secret;

use super::{
    SecurityService,
    certs::OPERATOR_COMMON_NAME,
    decide::auth::{AuthReport, AuthStep, EtcdAuth, auth_steps},
};
use crate::{ServiceError, config::component};

impl SecurityService {
    /// Brings etcd's authentication in line with spec.auth (nothing for a cluster without it, or
    /// one that has not formed); `None` when there was nothing to look at.
    pub(crate) async fn ensure_auth(&self, cluster: &EtcdCluster) -> Option<AuthReport> {
        let wanted = cluster.spec.auth.as_ref()?.enabled;
        if !cluster.formed() || cluster.spec.size == 0 {
            return None;
        }
        let secret = self.core.names_of(cluster).root_secret();
        // The operator authenticates by its client certificate: only once every member speaks TLS.
        if !cluster.members_speak_tls() {
            let why = "waits until every member speaks TLS (see status.transport): the operator authenticates by \
                       its client certificate";
            return wanted.then(|| AuthReport { wanted, now: Err(why.to_owned()), secret });
        }
        let now = self.auth_steps(cluster, wanted).await.map_err(|e| e.to_string());
        if let Err(e) = &now {
            tracing::warn!(error = %e, "etcd's authentication could not be brought in line with spec.auth");
        }
        Some(AuthReport { wanted, now, secret })
    }

    async fn auth_steps(&self, cluster: &EtcdCluster, wanted: bool) -> Result<EtcdAuth, ServiceError> {
        let password = self.root_password(cluster).await?;
        let names = self.core.names_of(cluster);
        let endpoints: Vec<String> =
            (0..cluster.spec.size).map(|i| names.client_url(&names.member(i))).collect();
        let options = self.core.etcd_options(cluster).await?;
        let client = EtcdClient::connect(&endpoints, options, self.core.etcd_metrics()).await?;
        let before = state(&client, &password).await?;
        let steps = auth_steps(wanted, &before);
        if steps.is_empty() {
            return Ok(before);
        }
        for step in steps {
            tracing::info!(?step, "etcd auth");
            match step {
                AuthStep::RootRole => client.ensure_root_role().await?,
                AuthStep::RootUser => client.ensure_root_user("root", Some(&password)).await?,
                AuthStep::OperatorUser => client.ensure_root_user(OPERATOR_COMMON_NAME, None).await?,
                AuthStep::Enable => client.enable_auth().await?,
                AuthStep::SetRootPassword => client.set_password("root", &password).await?,
                AuthStep::Disable => client.disable_auth().await?,
            }
        }
        state(&client, &password).await
    }

    /// Root's password from its Secret, made (once, never replaced) when missing.
    async fn root_password(&self, cluster: &EtcdCluster) -> Result<String, ServiceError> {
        let names = self.core.names_of(cluster);
        let read = |view: super::decide::SecretView| {
            view.data.and_then(|d| d.get("password").map(|p| String::from_utf8_lossy(p).into_owned()))
        };
        if let Some(p) = read(self.core.read_secret(&names.namespace, &names.root_secret()).await?) {
            return Ok(p);
        }
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| ServiceError::Internal(format!("no randomness: {e}")))?;
        let ctx = self.core.template(cluster);
        let secrets = self.core.managers_as(&names.namespace, component::SECURITY).secrets;
        // Created once: a replica that lost the race reads the winner's.
        secrets.create_once(&root_secret(&ctx, &hex::encode(bytes))?).await?;
        read(self.core.read_secret(&names.namespace, &names.root_secret()).await?).ok_or_else(|| {
            ServiceError::Internal(format!("Secret {} has no key password", names.root_secret()))
        })
    }
}

async fn state(client: &EtcdClient, password: &str) -> Result<EtcdAuth, ServiceError> {
    Ok(match client.auth_state("root", password).await? {
        AuthState::Enabled => EtcdAuth::Enabled,
        AuthState::Disabled => EtcdAuth::Disabled,
        AuthState::RootPasswordDiffers => EtcdAuth::RootPasswordDiffers,
    })
}
