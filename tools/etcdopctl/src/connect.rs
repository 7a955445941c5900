//! Reaching the API: its address, the CA its certificate is verified with, and the bearer
//! token every call carries, from the flags or from Kubernetes with the kubeconfig's credentials.

use std::time::Duration;

use etcd_operator_proto::endpoint::{Ca, api_with};
use etcd_operator_proto::v1alpha1::{
    backup_service_client::BackupServiceClient, cluster_service_client::ClusterServiceClient,
    health_service_client::HealthServiceClient, recovery_service_client::RecoveryServiceClient,
    security_service_client::SecurityServiceClient,
};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{ConfigMap, ServiceAccount},
};
use kube::{
    Api, Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use tonic::{Request, metadata::MetadataValue, service::interceptor::InterceptedService, transport::Channel};

use crate::{cli::Global, error::CliError};

/// How long an asked-for token lasts: one command's worth (Kubernetes' minimum is 10 minutes).
const TOKEN_SECONDS: i64 = 600;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A connection to the cluster-service, and the namespace commands default to.
pub struct Connection {
    channel: Channel,
    bearer: Bearer,
    timeout: Duration,
    /// The namespace of clusters named without one.
    pub namespace: String,
}

impl Connection {
    /// Resolves the server, CA and token from `g`, asking Kubernetes for what the flags leave out.
    pub async fn open(g: &Global) -> Result<Self, CliError> {
        let server = g.server.clone().ok_or_else(|| {
            CliError::Config("no server: pass --server https://HOST:PORT or set ETCDOPCTL_SERVER".into())
        })?;
        let needs_kube = g.token.is_none() || (g.ca_file.is_none() && !g.insecure) || g.namespace.is_none();
        let kube = if needs_kube { Some(kube_client(g).await?) } else { None };
        let namespace = match (&g.namespace, &kube) {
            (Some(ns), _) => ns.clone(),
            (None, Some((_, default))) => default.clone(),
            (None, None) => "default".into(),
        };
        let ca = if g.insecure && server.starts_with("http://") {
            None
        } else {
            Some(match &g.ca_file {
                Some(file) => Ca {
                    pem: std::fs::read(file)
                        .map_err(|e| CliError::Config(format!("--ca-file {}: {e}", file.display())))?,
                    from: format!("--ca-file {}", file.display()),
                },
                None => published_ca(&kube.as_ref().expect("asked for").0, g).await?,
            })
        };
        let token = match &g.token {
            Some(token) => token.clone(),
            None => account_token(&kube.as_ref().expect("asked for").0, g, &namespace).await?,
        };
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::Config("the token holds characters a header cannot carry".into()))?;
        let channel = api_with(&server, ca, g.insecure)
            .map_err(CliError::Config)?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self { channel, bearer: Bearer(bearer), timeout: Duration::from_secs(g.timeout), namespace })
    }

    /// A request carrying the call deadline.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.set_timeout(self.timeout);
        r
    }

    /// Calls `f` until it answers, fails for good, or six attempts are spent: ABORTED (another
    /// change of the cluster holds its lock) and UNAVAILABLE are retried with backoff, as the
    /// API's error model asks.
    pub async fn call<T, F, Fut>(&self, mut f: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(answer) => return Ok(answer.into_inner()),
                Err(s)
                    if matches!(s.code(), tonic::Code::Aborted | tonic::Code::Unavailable) && attempt < 6 =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(s) => return Err(s),
            }
        }
    }

    /// The ClusterService.
    pub fn clusters(&self) -> ClusterServiceClient<Authed> {
        ClusterServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The RecoveryService.
    pub fn recovery(&self) -> RecoveryServiceClient<Authed> {
        RecoveryServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The HealthService.
    pub fn health(&self) -> HealthServiceClient<Authed> {
        HealthServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The BackupService.
    pub fn backups(&self) -> BackupServiceClient<Authed> {
        BackupServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The SecurityService.
    pub fn security(&self) -> SecurityServiceClient<Authed> {
        SecurityServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

/// A Kubernetes client from the kubeconfig, and its context's namespace.
async fn kube_client(g: &Global) -> Result<(Client, String), CliError> {
    let options = KubeConfigOptions { context: g.context.clone(), ..Default::default() };
    let config = match &g.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| CliError::Config(format!("--kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| CliError::Config(format!("--kubeconfig {}: {e}", path.display())))
        }
        None if g.context.is_some() => {
            Config::from_kubeconfig(&options).await.map_err(|e| CliError::Config(format!("kubeconfig: {e}")))
        }
        None => Config::infer().await.map_err(|e| {
            CliError::Config(format!("no usable kubeconfig (set KUBECONFIG or pass --kubeconfig): {e}"))
        }),
    }?;
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| CliError::Config(format!("kubeconfig: {e}")))?;
    Ok((client, namespace))
}

/// The CA the operator publishes (ConfigMap `ca_config_map`, key `ca.crt`).
async fn published_ca(client: &Client, g: &Global) -> Result<Ca, CliError> {
    let from = format!("ConfigMap {}/{}", g.operator_namespace, g.ca_config_map);
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), &g.operator_namespace)
        .get_opt(&g.ca_config_map)
        .await
        .map_err(|e| CliError::Kubernetes(format!("reading the API's CA ({from}): {e}")))?
        .ok_or_else(|| {
            CliError::Config(format!(
                "{from} does not exist: pass --operator-namespace where the operator runs, or --ca-file"
            ))
        })?;
    let pem = config_map.data.and_then(|mut d| d.remove("ca.crt")).ok_or_else(|| {
        CliError::Config(format!("{from} has no ca.crt: the cluster-service has not published its CA yet"))
    })?;
    Ok(Ca { pem: pem.into_bytes(), from })
}

/// A short-lived token of the service account for the API's audience (a TokenRequest).
async fn account_token(client: &Client, g: &Global, namespace: &str) -> Result<String, CliError> {
    let (account_ns, account) = match g.service_account.split_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (namespace.to_owned(), g.service_account.clone()),
    };
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![g.audience.clone()],
            expiration_seconds: Some(TOKEN_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), &account_ns)
        .create_token_request(&account, &Default::default(), &request)
        .await
        .map_err(|e| {
            CliError::Kubernetes(format!(
                "asking Kubernetes for a token of service account {account_ns}/{account} \
                 (--service-account): {e}"
            ))
        })?;
    answer
        .status
        .map(|s| s.token)
        .ok_or_else(|| CliError::Kubernetes("Kubernetes answered the TokenRequest without a token".into()))
}
