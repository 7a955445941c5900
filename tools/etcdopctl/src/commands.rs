//! One function per command: calls, and what is printed.

use std::io::Write;

use etcd_operator_proto::v1alpha1 as pb;

use crate::{
    cli::{Output, Wait},
    connect::Connection,
    error::CliError,
    follow::{Follow, Progress, follow, sized, upgraded, upgrading},
    view::{ClusterView, document, list_table, status_text},
};

/// A cluster the command is about.
pub struct Target<'a> {
    pub conn: &'a Connection,
    pub name: &'a str,
}

impl Target<'_> {
    pub(crate) fn cluster_ref(&self) -> pb::ClusterRef {
        pb::ClusterRef { namespace: self.conn.namespace.clone(), name: self.name.to_owned() }
    }

    /// `default/demo`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.conn.namespace, self.name)
    }

    /// How to follow this cluster again.
    pub(crate) fn again(&self) -> String {
        format!("etcdopctl status {} -n {} --watch", self.name, self.conn.namespace)
    }

    /// The status, as recorded or (`fresh`) observed now.
    pub async fn status(&self, fresh: bool) -> Result<ClusterView, CliError> {
        let req = pb::GetClusterStatusRequest { cluster: Some(self.cluster_ref()), fresh };
        let answer = self
            .conn
            .call(|| {
                let (mut c, req) = (self.conn.clusters(), self.conn.request(req.clone()));
                async move { c.get_cluster_status(req).await }
            })
            .await
            .map_err(|s| CliError::api(format!("status of {}", self.label()), &s))?;
        Ok(ClusterView::from(&answer.status.unwrap_or_default()))
    }

    /// Changes the named spec fields only (an update mask), so nothing else is overwritten.
    async fn patch(&self, what: &str, spec: pb::ClusterSpec, paths: &[&str]) -> Result<(), CliError> {
        let req = pb::UpdateClusterRequest {
            cluster: Some(self.cluster_ref()),
            spec: Some(spec),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        self.conn
            .call(|| {
                let (mut c, req) = (self.conn.clusters(), self.conn.request(req.clone()));
                async move { c.update_cluster(req).await }
            })
            .await
            .map(drop)
            .map_err(|s| CliError::api(what, &s))
    }
}

fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| CliError::Output(e.to_string()))
}

/// `list`: every cluster of the namespace (or all), page by page.
pub async fn list(conn: &Connection, all: bool, output: Output) -> Result<String, CliError> {
    let namespace = if all { String::new() } else { conn.namespace.clone() };
    let mut clusters = Vec::new();
    let mut page_token = String::new();
    loop {
        let req = pb::ListClustersRequest { namespace: namespace.clone(), page_size: 500, page_token };
        let page = conn
            .call(|| {
                let (mut c, req) = (conn.clusters(), conn.request(req.clone()));
                async move { c.list_clusters(req).await }
            })
            .await
            .map_err(|s| CliError::api("list clusters", &s))?;
        clusters.extend(page.clusters.iter().map(ClusterView::from));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    match output {
        Output::Table if clusters.is_empty() => {
            Ok(format!("no clusters in {}\n", if all { "any namespace" } else { &namespace }))
        }
        Output::Table => Ok(list_table(&clusters)),
        other => document(&clusters, other),
    }
}

/// `status`.
pub async fn status(t: &Target<'_>, output: Output, fresh: bool) -> Result<String, CliError> {
    let view = t.status(fresh).await?;
    match output {
        Output::Table => Ok(status_text(&view)),
        other => document(&view, other),
    }
}

/// Prints `render()` now and again whenever it changes, until Ctrl-C (which ends it normally).
pub async fn watch<F, Fut>(mut render: F) -> Result<(), CliError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, CliError>>,
{
    let mut last = String::new();
    let mut interrupted = crate::follow::interrupts()?;
    loop {
        let now = render().await?;
        if now != last {
            print(&if last.is_empty() { now.clone() } else { format!("\n{now}") })?;
            last = now;
        }
        tokio::select! {
            _ = interrupted.recv() => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

/// `scale`, `stop` and `restart`: spec.size, then the members following it.
pub async fn resize(t: &Target<'_>, size: i32, wait: &Wait) -> Result<String, CliError> {
    let what = match size {
        0 => format!("stop {}", t.label()),
        n => format!("scale {} to {n}", t.label()),
    };
    let before = t.status(false).await?;
    let spec = pb::ClusterSpec { size, ..Default::default() };
    t.patch(&what, spec, &["size"]).await?;
    if wait.no_wait {
        return Ok(format!("{what}: accepted; follow it with: {}\n", t.again()));
    }
    let goal = sized(before.current_size, size);
    let f = Follow {
        what: what.clone(),
        steps: steps(before.current_size, size),
        again: t.again(),
        progress: &goal,
    };
    let view = follow(&f, wait, move || t.status(false)).await?;
    Ok(match size {
        0 => format!("{what}: stopped, data kept\n"),
        _ => format!("{what}: {} of {} members ready\n", view.ready_members, view.current_size),
    })
}

fn steps(from: i32, to: i32) -> u64 {
    u64::from((to - from).unsigned_abs())
}

/// `upgrade`: spec.version, then every member restarted on it.
pub async fn upgrade(t: &Target<'_>, version: &str, wait: &Wait) -> Result<String, CliError> {
    let what = format!("upgrade {} to {version}", t.label());
    let before = t.status(false).await?;
    let spec = pb::ClusterSpec { version: version.to_owned(), ..Default::default() };
    t.patch(&what, spec, &["version"]).await?;
    if wait.no_wait {
        return Ok(format!("{what}: accepted; follow it with: {}\n", t.again()));
    }
    let goal = upgraded(version);
    let f =
        Follow { what: what.clone(), steps: before.members.len() as u64, again: t.again(), progress: &goal };
    let view = follow(&f, wait, move || t.status(false)).await?;
    // Its message says how many members run the version and etcd's cluster version.
    let said = upgrading(&view).map(|c| c.message.clone()).unwrap_or_default();
    Ok(format!("{what}: up to date; {said}\n"))
}

/// The steps of a replacement, in order (status.operation.step).
const REPLACE_STEPS: [&str; 5] =
    ["RemovingMember", "RecreatingVolume", "AddingLearner", "StartingMember", "PromotingMember"];

/// `replace-member`: one ReplaceMember call per step, as long as the answer says to call again.
pub async fn replace_member(t: &Target<'_>, member: &str, wait: &Wait) -> Result<String, CliError> {
    let what = format!("replace {member} of {}", t.label());
    // Only the first call names the member: once it is recorded, calls without a name carry the
    // recorded replacement on (as the recovery controller's do), and a call after it ended can
    // never start a second replacement of the same member.
    let call = |name: String| async {
        let req = pb::ReplaceMemberRequest { cluster: Some(t.cluster_ref()), member: name };
        let answer = t
            .conn
            .call(|| {
                let (mut c, req) = (t.conn.recovery(), t.conn.request(req.clone()));
                async move { c.replace_member(req).await }
            })
            .await;
        answer.map_err(|s| CliError::api(what.clone(), &s))
    };
    let first = call(member.to_owned()).await?;
    if wait.no_wait {
        return Ok(format!("{what}: started; follow it with: {}\n", t.again()));
    }
    let last = &std::cell::RefCell::new(Some(first));
    let call = &call;
    let goal = |v: &ClusterView| match &v.operation {
        Some(op) if op.type_ == "ReplaceMember" && op.member.as_deref() == Some(member) => {
            Progress::At(REPLACE_STEPS.iter().position(|s| *s == op.step).unwrap_or(0) as u64)
        }
        _ if back_as_voter(v, member) => Progress::Done,
        _ => Progress::Stuck(format!(
            "the replacement ended but {member} is not a healthy voter; see `status`"
        )),
    };
    let f =
        Follow { what: what.clone(), steps: REPLACE_STEPS.len() as u64, again: t.again(), progress: &goal };
    follow(&f, wait, move || async move {
        // Each answer carries the status after its step: the recorded one may lag behind it.
        let first = last.borrow_mut().take();
        let answer = match first {
            Some(answer) => answer,
            None => call(String::new()).await?,
        };
        let requeue = answer.requeue.unwrap_or_default();
        let view = ClusterView::from(&answer.status.unwrap_or_default());
        let after = u64::try_from(requeue.after_ms).unwrap_or(0).min(5_000);
        tokio::time::sleep(std::time::Duration::from_millis(after)).await;
        Ok(view)
    })
    .await?;
    Ok(format!("{what}: {member} is a healthy voter again\n"))
}

/// Whether `member` is a healthy voter.
fn back_as_voter(v: &ClusterView, member: &str) -> bool {
    v.members.iter().any(|m| m.name == member && m.healthy && m.role != "learner")
}

/// `defrag`: each member (or the one named) in turn, with the space it gave back.
pub async fn defrag(t: &Target<'_>, only: Option<&str>) -> Result<String, CliError> {
    let members: Vec<String> = match only {
        Some(m) => vec![m.to_owned()],
        None => t.status(false).await?.members.into_iter().map(|m| m.name).collect(),
    };
    for member in members {
        let req = pb::DefragmentMemberRequest { cluster: Some(t.cluster_ref()), member: member.clone() };
        let answer = t
            .conn
            .call(|| {
                let (mut c, req) = (t.conn.health(), t.conn.request(req.clone()));
                async move { c.defragment_member(req).await }
            })
            .await
            .map_err(|s| CliError::api(format!("defragment {member} of {}", t.label()), &s))?;
        let line = format!(
            "{member}: {} -> {}\n",
            crate::view::bytes(answer.db_size_before_bytes),
            crate::view::bytes(answer.db_size_after_bytes)
        );
        // Each as it is done: a defragmentation takes a while on a large database.
        print(&line)?;
    }
    Ok(String::new())
}
