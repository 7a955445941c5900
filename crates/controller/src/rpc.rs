//! The cluster-service client of a controller: one reused connection,
//! a deadline on every call, retries with backoff on UNAVAILABLE and
//! ABORTED, trace context and the bearer token on every request, and
//! client-side metrics.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use etcd_operator_proto::endpoint::api;
use etcd_operator_proto::v1alpha1::{
    backup_service_client::BackupServiceClient, cluster_service_client::ClusterServiceClient,
    health_service_client::HealthServiceClient, recovery_service_client::RecoveryServiceClient,
    scaling_service_client::ScalingServiceClient,
};
use etcd_operator_telemetry::{
    grpc::code_name,
    metrics::{RpcLabels, RpcMetrics},
    propagation::TraceContextInterceptor,
};
use tonic::{Code, Request, Response, Status, service::interceptor::InterceptedService, transport::Channel};

type Traced = InterceptedService<Channel, CallInterceptor>;

/// How long a token read from its file is used before the file is read again: the kubelet
/// renews projected tokens long before they expire.
const TOKEN_REREAD: Duration = Duration::from_secs(30);

/// Adds the trace context and, when a token file is set, `authorization: Bearer <token>`.
#[derive(Clone, Default)]
pub struct CallInterceptor {
    token: Option<TokenFile>,
}

/// A token file and its last reading.
#[derive(Clone)]
struct TokenFile {
    path: PathBuf,
    /// How long a reading is used.
    reread: Duration,
    read: Arc<Mutex<Option<(Instant, String)>>>,
}

impl TokenFile {
    fn new(path: PathBuf, reread: Duration) -> Self {
        Self { path, reread, read: Arc::default() }
    }

    fn token(&self) -> Result<String, Status> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, token)) = read.as_ref().filter(|(at, _)| at.elapsed() < self.reread) {
            return Ok(token.clone());
        }
        let token = std::fs::read_to_string(&self.path).map(|t| t.trim().to_owned()).map_err(|e| {
            Status::unauthenticated(format!("cannot read the token file {}: {e}", self.path.display()))
        })?;
        *read = Some((Instant::now(), token.clone()));
        Ok(token)
    }
}

impl tonic::service::Interceptor for CallInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let mut request = tonic::service::Interceptor::call(&mut TraceContextInterceptor, request)?;
        if let Some(file) = &self.token {
            let value = format!("Bearer {}", file.token()?).parse().map_err(|_| {
                Status::unauthenticated("the token file holds characters a header cannot carry")
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// How calls are made.
#[derive(Clone, Debug)]
pub struct RpcOptions {
    /// Deadline of each attempt.
    pub timeout: Duration,
    /// Attempts for retryable codes.
    pub attempts: u32,
    /// First backoff; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// File of the bearer token to send; none sends no token.
    pub token_file: Option<PathBuf>,
    /// The CA certificate an `https://` endpoint is verified with.
    pub ca_file: Option<PathBuf>,
    /// Whether an `http://` (plaintext) endpoint is taken.
    pub insecure: bool,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            token_file: None,
            ca_file: None,
            insecure: false,
        }
    }
}

/// Clients of every cluster-service API over one channel.
#[derive(Clone)]
pub struct RpcClient {
    channel: Channel,
    options: RpcOptions,
    metrics: RpcMetrics,
    interceptor: CallInterceptor,
}

/// Whether a failed call may succeed when repeated.
pub fn retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Aborted)
}

impl RpcClient {
    /// A client of `endpoint` (for example `https://cluster-service:9090`); connects lazily.
    pub fn new(endpoint: &str, options: RpcOptions, metrics: RpcMetrics) -> Result<Self, String> {
        let channel = api(endpoint, options.ca_file.as_deref(), options.insecure)
            .map_err(|e| format!("the cluster-service's {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .connect_lazy();
        let token = options.token_file.clone().map(|path| TokenFile::new(path, TOKEN_REREAD));
        Ok(Self { channel, options, metrics, interceptor: CallInterceptor { token } })
    }

    /// The ClusterService client.
    pub fn clusters(&self) -> ClusterServiceClient<Traced> {
        ClusterServiceClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }

    /// The HealthService client.
    pub fn health(&self) -> HealthServiceClient<Traced> {
        HealthServiceClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }

    /// The BackupService client.
    pub fn backup(&self) -> BackupServiceClient<Traced> {
        BackupServiceClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }

    /// The RecoveryService client.
    pub fn recovery(&self) -> RecoveryServiceClient<Traced> {
        RecoveryServiceClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }

    /// The ScalingService client.
    pub fn scaling(&self) -> ScalingServiceClient<Traced> {
        ScalingServiceClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }

    /// A request carrying the call deadline.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.set_timeout(self.options.timeout);
        r
    }

    /// Calls `f` until it succeeds, fails for good, or runs out of attempts.
    pub async fn call<T, F, Fut>(&self, service: &str, method: &str, mut f: F) -> Result<T, Status>
    where
        F: FnMut(Self) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut backoff = self.options.initial_backoff;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = f(self.clone()).await;
            let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
            let labels = RpcLabels {
                side: "client",
                service: service.into(),
                method: method.into(),
                code: code_name(code),
            };
            self.metrics.observe(labels, started);
            match result {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if retryable(status.code()) && attempt < self.options.attempts => {
                    tracing::debug!(method, attempt, code = ?status.code(), "retrying: {}", status.message());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    attempt += 1;
                }
                Err(status) => return Err(status),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_file_is_reread_as_the_kubelet_renews_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let cached = TokenFile::new(path.clone(), Duration::from_secs(60));
        assert_eq!(cached.token().unwrap(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(cached.token().unwrap(), "first", "a reading is used for a while");
        assert_eq!(TokenFile::new(path.clone(), Duration::ZERO).token().unwrap(), "second");

        let mut interceptor = CallInterceptor { token: Some(TokenFile::new(path, Duration::ZERO)) };
        let request = tonic::service::Interceptor::call(&mut interceptor, Request::new(())).unwrap();
        assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer second");
        let mut missing =
            CallInterceptor { token: Some(TokenFile::new(dir.path().join("gone"), Duration::ZERO)) };
        let status = tonic::service::Interceptor::call(&mut missing, Request::new(())).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(status.message().contains("gone"), "{}", status.message());
    }
}
