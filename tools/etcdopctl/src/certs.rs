//! `certs`: the cluster's certificates and when they expire.

use etcd_operator_proto::v1alpha1 as pb;
use serde::Serialize;

use crate::{cli::Output, commands::Target, error::CliError, view::document};

/// One certificate as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CertView {
    purpose: String,
    secret: String,
    not_after: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    renews_at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    problem: String,
}

/// The certificates of a cluster as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CertsView {
    tls: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    mode: String,
    certificates: Vec<CertView>,
    #[serde(skip_serializing_if = "String::is_empty")]
    ca_rotation_phase: String,
}

/// `certs`.
pub async fn certs(t: &Target<'_>, output: Output) -> Result<String, CliError> {
    let cluster = Some(pb::ClusterRef { namespace: t.conn.namespace.clone(), name: t.name.to_owned() });
    let req = pb::GetCertificatesRequest { cluster };
    let answer = t
        .conn
        .call(|| {
            let (mut c, req) = (t.conn.security(), t.conn.request(req.clone()));
            async move { c.get_certificates(req).await }
        })
        .await
        .map_err(|s| CliError::api(format!("certificates of {}", t.label()), &s))?;
    let view = CertsView {
        tls: answer.tls,
        mode: answer.mode.clone(),
        certificates: answer
            .certificates
            .iter()
            .map(|c| CertView {
                purpose: c.purpose.clone(),
                secret: c.secret_name.clone(),
                not_after: c.not_after.clone(),
                renews_at: c.renews_at.clone(),
                problem: c.problem.clone(),
            })
            .collect(),
        ca_rotation_phase: answer.ca_rotation_phase.clone(),
    };
    match output {
        Output::Table => Ok(table(&view, answer.ready.as_ref())),
        other => document(&view, other),
    }
}

fn table(view: &CertsView, ready: Option<&pb::Condition>) -> String {
    if !view.tls {
        return "no TLS: the cluster has no spec.tls\n".into();
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING).set_header([
        "PURPOSE",
        "SECRET",
        "NOT AFTER",
        "RENEWS AT",
        "PROBLEM",
    ]);
    for c in &view.certificates {
        t.add_row([&c.purpose, &c.secret, &c.not_after, &c.renews_at, &c.problem]);
    }
    let mut out = format!("Mode: {}\n", view.mode);
    if let Some(ready) = ready {
        out += &format!("CertificatesReady: {} ({})\n", ready.reason, ready.message);
    }
    if !view.ca_rotation_phase.is_empty() {
        out += &format!("CA rotation: {}\n", view.ca_rotation_phase);
    }
    out + "\n" + &crate::view::rendered(&t)
}
