//! How many requests of a kind the API server served, from its `/metrics`
//! (`apiserver_request_total`), read through the API like any client would.

use std::collections::BTreeMap;

/// Every `apiserver_request_total` series: its labels (`k="v"` pairs) and its count.
async fn series(client: &kube::Client) -> Vec<(String, u64)> {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("a request");
    let text = client.request_text(request).await.expect("the API server's /metrics");
    text.lines()
        .filter_map(|line| line.strip_prefix("apiserver_request_total{"))
        .filter_map(|rest| rest.split_once("} "))
        .map(|(labels, n)| (labels.to_owned(), n.trim().parse::<u64>().expect("a counter")))
        .collect()
}

fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix("=\"")?.strip_suffix('"'))
        .unwrap_or_default()
}

/// Requests served so far with `verb` on `resource` (and `subresource`, empty for none), over
/// every code and scope.
pub async fn served(client: &kube::Client, verb: &str, resource: &str, subresource: &str) -> u64 {
    let wanted = [("verb", verb), ("resource", resource), ("subresource", subresource)];
    series(client)
        .await
        .into_iter()
        .filter(|(labels, _)| wanted.iter().all(|(k, v)| label(labels, k) == *v))
        .map(|(_, n)| n)
        .sum()
}

/// Requests served so far, of every verb and resource (watches count when they open).
pub async fn all_served(client: &kube::Client) -> u64 {
    series(client).await.into_iter().map(|(_, n)| n).sum()
}

/// Requests served so far by `verb resource[/subresource]`, over every code and scope.
pub async fn by_kind(client: &kube::Client) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, n) in series(client).await {
        let sub = label(&labels, "subresource");
        let resource = match sub {
            "" => label(&labels, "resource").to_owned(),
            sub => format!("{}/{sub}", label(&labels, "resource")),
        };
        *out.entry(format!("{} {resource}", label(&labels, "verb"))).or_default() += n;
    }
    out
}
