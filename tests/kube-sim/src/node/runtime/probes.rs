//! Readiness, liveness and startup probes (HTTP GET, TCP, exec), run from the
//! node as the kubelet does: HTTP and TCP against the pod IP, exec inside the
//! container's namespaces.

use std::{net::Ipv4Addr, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Timing and thresholds of a probe.
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    /// The probe object (`httpGet`, `tcpSocket` or `exec`).
    pub probe: Value,
    /// Delay before the first probe.
    pub initial_delay: Duration,
    /// Interval between probes.
    pub period: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Consecutive successes to count as passing.
    pub success_threshold: u32,
    /// Consecutive failures to count as failing.
    pub failure_threshold: u32,
}

impl ProbeSpec {
    /// Reads a probe with Kubernetes defaults; `max_period` caps the period (faster tests).
    pub fn parse(probe: &Value, max_period: Option<Duration>) -> Option<Self> {
        if !probe.is_object() {
            return None;
        }
        let secs = |field: &str, default: u64| Duration::from_secs(probe[field].as_u64().unwrap_or(default));
        let mut period = secs("periodSeconds", 10);
        if let Some(max) = max_period {
            period = period.min(max);
        }
        Some(Self {
            probe: probe.clone(),
            initial_delay: secs("initialDelaySeconds", 0),
            period,
            timeout: secs("timeoutSeconds", 1),
            success_threshold: probe["successThreshold"].as_u64().unwrap_or(1) as u32,
            failure_threshold: probe["failureThreshold"].as_u64().unwrap_or(3) as u32,
        })
    }
}

/// Opens a TCP connection to the pod from the kubelet's own address (`from`), as a kubelet's
/// probes come from its node: a fault that cuts other host traffic off the pods leaves them alone.
async fn dial(from: Option<Ipv4Addr>, ip: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(from) = from {
        socket.bind((from, 0).into())?;
    }
    socket.connect((ip, port).into()).await
}

/// Runs one attempt from `from` (the kubelet's address); `Err` says why it failed.
pub async fn attempt(
    spec: &ProbeSpec,
    from: Option<Ipv4Addr>,
    pod_ip: Ipv4Addr,
    container: &Value,
    pid: u32,
) -> Result<(), String> {
    let p = &spec.probe;
    let attempt = async {
        if p["httpGet"].is_object() {
            let port = port(&p["httpGet"]["port"], container)?;
            if p["httpGet"]["scheme"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("https")) {
                return Err("HTTPS probes are not supported by kube-sim's node".to_owned());
            }
            http_get(from, pod_ip, port, p["httpGet"]["path"].as_str().unwrap_or("/")).await
        } else if p["tcpSocket"].is_object() {
            let port = port(&p["tcpSocket"]["port"], container)?;
            dial(from, pod_ip, port).await.map(drop).map_err(|e| format!("dial tcp {pod_ip}:{port}: {e}"))
        } else if p["exec"].is_object() {
            let argv: Vec<String> = p["exec"]["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            let out = super::container::exec_in(pid, &argv, spec.timeout).await?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("command {argv:?} exited with {}", out.status.code().unwrap_or(-1)))
            }
        } else {
            Err("probe has no httpGet, tcpSocket or exec handler (gRPC probes are not supported)".to_owned())
        }
    };
    tokio::time::timeout(spec.timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("probe timed out after {:?}", spec.timeout)))
}

/// A port by number or by the container's port name.
fn port(v: &Value, container: &Value) -> Result<u16, String> {
    if let Some(n) = v.as_u64() {
        return u16::try_from(n).map_err(|_| format!("port {n} is out of range"));
    }
    let name = v.as_str().unwrap_or_default();
    if let Ok(n) = name.parse::<u16>() {
        return Ok(n);
    }
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| format!("port {name:?} is not a named port of the container"))
}

/// HTTP/1.0 GET; 200–399 is success, as for the kubelet.
async fn http_get(from: Option<Ipv4Addr>, ip: Ipv4Addr, port: u16, path: &str) -> Result<(), String> {
    let mut stream = dial(from, ip, port).await.map_err(|e| format!("GET http://{ip}:{port}{path}: {e}"))?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/kube-sim\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64];
    let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| {
        format!(
            "GET http://{ip}:{port}{path}: not an HTTP answer: {:?}",
            line.lines().next().unwrap_or_default()
        )
    })?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_applies_defaults_and_the_period_cap() {
        let s = ProbeSpec::parse(&json!({"httpGet": {"port": 2381}}), None).unwrap();
        assert_eq!(
            (s.period, s.timeout, s.success_threshold, s.failure_threshold),
            (Duration::from_secs(10), Duration::from_secs(1), 1, 3)
        );
        let s = ProbeSpec::parse(
            &json!({"tcpSocket": {"port": 1}, "periodSeconds": 10}),
            Some(Duration::from_secs(1)),
        )
        .unwrap();
        assert_eq!(s.period, Duration::from_secs(1));
        assert!(ProbeSpec::parse(&Value::Null, None).is_none());
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let c = json!({"ports": [{"name": "metrics", "containerPort": 2381}]});
        assert_eq!(port(&json!("metrics"), &c), Ok(2381));
        assert_eq!(port(&json!(8080), &c), Ok(8080));
        assert!(port(&json!("nope"), &c).unwrap_err().contains("not a named port"));
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let code = if n == 0 { "200 OK" } else { "503 Service Unavailable" };
                let _ = s.write_all(format!("HTTP/1.0 {code}\r\n\r\n").as_bytes()).await;
                n += 1;
            }
        });
        let ip = Ipv4Addr::LOCALHOST;
        let http = ProbeSpec::parse(&json!({"httpGet": {"port": port, "path": "/health"}}), None).unwrap();
        assert_eq!(attempt(&http, None, ip, &json!({}), 0).await, Ok(()));
        assert!(attempt(&http, None, ip, &json!({}), 0).await.unwrap_err().contains("statuscode: 503"));
        let tcp = ProbeSpec::parse(&json!({"tcpSocket": {"port": port}}), None).unwrap();
        assert_eq!(attempt(&tcp, None, ip, &json!({}), 0).await, Ok(()));
    }
}
