//! How many requests of a kind the API server served, from its `/metrics`
//! (`apiserver_request_total`), read through the API like any client would.

/// Requests served so far with `verb` on `resource` (and `subresource`, empty for none), over
/// every code and scope.
pub async fn served(client: &kube::Client, verb: &str, resource: &str, subresource: &str) -> u64 {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("a request");
    let text = client.request_text(request).await.expect("the API server's /metrics");
    let wanted = [("verb", verb), ("resource", resource), ("subresource", subresource)];
    text.lines()
        .filter_map(|line| line.strip_prefix("apiserver_request_total{"))
        .filter_map(|rest| rest.split_once("} "))
        .filter(|(labels, _)| {
            wanted.iter().all(|(k, v)| labels.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
        })
        .map(|(_, n)| n.trim().parse::<u64>().expect("a counter"))
        .sum()
}

/// Requests served so far, of every verb and resource (watches count when they open).
pub async fn all_served(client: &kube::Client) -> u64 {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("a request");
    let text = client.request_text(request).await.expect("the API server's /metrics");
    text.lines()
        .filter_map(|line| line.strip_prefix("apiserver_request_total{"))
        .filter_map(|rest| rest.split_once("} "))
        .map(|(_, n)| n.trim().parse::<u64>().expect("a counter"))
        .sum()
}
