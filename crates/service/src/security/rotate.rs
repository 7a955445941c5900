//! Rotating a cluster's CA: the effects of `decide/rotation.rs`, under the
//! cluster's lock (the lifecycle's reconcile, before it applies the pod
//! template that names the trusted CAs, and RotateCertificateAuthority).
//! Failpoints `rotation::before::<Step>` and `rotation::after::<Step>`
//! (feature `failpoints`) let tests crash it between any two steps.

use std::collections::BTreeMap;

use etcd_operator_api::{
    EtcdCluster,
    cluster::{CaRotationPhase, CaRotationStatus, CertificateAuthorityStatus},
};
use etcd_operator_client::etcd::served_certificate;
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_resource::templates::{
    TRUSTED_CAS_ANNOTATION, TemplateContext,
    tls::{PURPOSES, Purpose, ca_secret, certificate_secret, secret_name},
};
use kube::runtime::events::EventType;

use super::{
    SecurityService, certs,
    certs::Pair,
    decide::{
        Finding, Lifetimes, SecretView, examine,
        rotation::{CaKeys, LeafTrust, RotationInputs, RotationStep, next_rotation_step, provided_trust},
    },
    internal,
};
use crate::{ServiceError, config::component, observe::StatefulSetState};

/// Steps one call takes at most (a rotation has about ten, two of them waiting on rolls).
const MAX_STEPS: usize = 12;

impl SecurityService {
    /// Starts a rotation of the cluster's CA and takes its steps as far as they go now; the
    /// lifecycle carries it on. Refused for provided Secrets and while paused.
    #[tracing::instrument(name = "RotateCertificateAuthority", skip_all, fields(cluster.namespace = %r.namespace, cluster.name = %r.name, operation = "RotateCertificateAuthority"))]
    pub async fn rotate_ca(&self, r: &ClusterRef) -> Result<CertificateAuthorityStatus, ServiceError> {
        let cluster = self.core.get(r).await?;
        crate::core::ensure_not_paused(&cluster)?;
        if cluster.spec.tls.as_ref().and_then(|t| t.operator_managed.as_ref()).is_none() {
            return Err(ServiceError::FailedPrecondition(format!(
                "EtcdCluster {r} has no spec.tls.operatorManaged: only an operator-managed CA is rotated by the \
                 operator (with spec.tls.provided, change ca.crt in your Secrets)"
            )));
        }
        if !cluster.members_speak_tls() {
            return Err(ServiceError::FailedPrecondition(format!(
                "EtcdCluster {r}'s members do not all speak TLS yet (see status.transport): its CA is rotated once \
                 they do"
            )));
        }
        if cluster.certificate_authority().is_some_and(|c| c.rotation.is_some()) {
            return Err(ServiceError::FailedPrecondition(format!(
                "a CA rotation of {r} is in progress; it finishes first"
            )));
        }
        self.core.locked(r, self.rotate(&cluster, true)).await?;
        let after = self.core.get(r).await?;
        Ok(after.status.and_then(|s| s.certificate_authority).unwrap_or_default())
    }

    /// Takes the rotation's steps (starting one only when asked or when the CA is due) until one
    /// must wait; whether the record in status changed (the caller reads the cluster again).
    pub(crate) async fn rotate(&self, cluster: &EtcdCluster, requested: bool) -> Result<bool, ServiceError> {
        let Some(tls) = cluster.tls_in_use() else { return Ok(false) };
        let Some(managed) = &tls.operator_managed else { return self.follow_provided(cluster).await };
        // Only while the members speak TLS: a rotation in progress finishes even if spec.tls was
        // removed meanwhile (the move to plaintext waits for it), and none starts during a move.
        let rotating = cluster.certificate_authority().is_some_and(|c| c.rotation.is_some());
        if !(cluster.members_speak_tls() || (rotating && cluster.member_transport().listen_tls)) {
            return Ok(false);
        }
        let lifetimes = Lifetimes::of(managed);
        let r = crate::core::cluster_ref(cluster);
        let mut cluster = cluster.clone();
        let mut recorded = false;
        // A request is spent by the step that starts the rotation.
        let mut requested = requested;
        for _ in 0..MAX_STEPS {
            let step = self.next_step(&cluster, requested, lifetimes).await?;
            let name = step.name();
            tracing::info!(step = name, detail = ?step, "CA rotation");
            fail::fail_point!(&format!("rotation::before::{name}"));
            match step {
                RotationStep::Nothing(_) | RotationStep::Wait(_) => break,
                RotationStep::AddNextCa { reason } => {
                    self.add_next_ca(&cluster).await?;
                    self.event(
                        &cluster,
                        "RotatingCA",
                        &format!("a new CA is trusted beside the old one: {reason}"),
                    )
                    .await;
                    requested = false;
                }
                RotationStep::Record { phase, trusted, reason } => {
                    let rotation = phase.map(|phase| CaRotationStatus {
                        phase,
                        started_at: cluster
                            .certificate_authority()
                            .and_then(|c| c.rotation.as_ref())
                            .map_or_else(now_rfc3339, |r| r.started_at.clone()),
                        reason: reason.clone(),
                    });
                    // Each phase its own reason, so none is folded into another.
                    let (event, note) = match &rotation {
                        Some(r) => (r.phase.as_str(), format!("{}: {reason}", r.phase.as_str())),
                        None => {
                            ("CARotated", "the CA rotation is done: the old CA is trusted no more".into())
                        }
                    };
                    self.record(&r, &CertificateAuthorityStatus { trusted, rotation }).await?;
                    self.event(&cluster, event, &note).await;
                    cluster = self.core.get(&r).await?;
                    recorded = true;
                }
                RotationStep::SetBundle(purposes) => self.set_bundle(&cluster, &purposes).await?,
                RotationStep::PromoteNext => self.promote_next(&cluster).await?,
                RotationStep::Reissue(purposes) => {
                    let ctx = self.core.template(&cluster);
                    let (ca, bundle) = self.issuing_ca(&ctx).await?;
                    for purpose in purposes {
                        self.issue_leaf(&ctx, purpose, &ca, &bundle, lifetimes).await?;
                    }
                }
                RotationStep::DropPrevious => {
                    let ctx = self.core.template(&cluster);
                    let keys = self.ca_keys(&ctx).await?;
                    let current = keys.current.ok_or_else(|| internal("the CA Secret lost its CA"))?;
                    self.write_ca(&ctx, &current, &[]).await?;
                }
            }
            fail::fail_point!(&format!("rotation::after::{name}"));
        }
        Ok(recorded)
    }

    /// With provided Secrets: records the CAs their `ca.crt` holds when the user changed them
    /// (cert-manager, trust-manager), so the pod template changes and the members restart, one at a
    /// time, to trust them; whether the record changed.
    async fn follow_provided(&self, cluster: &EtcdCluster) -> Result<bool, ServiceError> {
        let ctx = self.core.template(cluster);
        let mut in_secrets = Vec::new();
        let mut usable = true;
        for (purpose, secret) in self.leaf_data(&ctx, cluster).await? {
            usable &= matches!(examine(purpose, &secret).state, Finding::Usable(_));
            // The operator's own certificate is not mounted by the members.
            if purpose != Purpose::Operator {
                let ca = secret.data.as_ref().and_then(|d| d.get("ca.crt"));
                in_secrets.extend(ca.map(|c| certs::fingerprints(c)).unwrap_or_default());
            }
        }
        let was = cluster.certificate_authority().map(|c| c.trusted.clone()).unwrap_or_default();
        let Some(trusted) = provided_trust(&was, &in_secrets, usable) else { return Ok(false) };
        let r = crate::core::cluster_ref(cluster);
        self.record(&r, &CertificateAuthorityStatus { trusted: trusted.clone(), rotation: None }).await?;
        if !was.is_empty() {
            let note =
                format!("ca.crt now holds {}: members restart one at a time to trust it", trusted.join(", "));
            self.event(cluster, "TrustChanged", &note).await;
        }
        Ok(true)
    }

    /// Reads what the next step decides from.
    async fn next_step(
        &self,
        cluster: &EtcdCluster,
        requested: bool,
        lifetimes: Lifetimes,
    ) -> Result<RotationStep, ServiceError> {
        let ctx = self.core.template(cluster);
        let keys = self.ca_keys(&ctx).await?;
        let known = keys.certificates();
        let mut leaves = Vec::new();
        for (purpose, secret) in self.leaf_data(&ctx, cluster).await? {
            let Some(data) = secret.data else { continue };
            let trusts = data.get("ca.crt").map(|c| certs::fingerprints(c)).unwrap_or_default();
            let signed_by = data.get("tls.crt").and_then(|crt| certs::signer(crt, &known));
            leaves.push(LeafTrust { purpose, trusts, signed_by });
        }
        let status = cluster.certificate_authority();
        let want = status.map(|s| s.trusted.join(",")).unwrap_or_default();
        let rolled = self.rolled_onto(cluster, TRUSTED_CAS_ANNOTATION, &want).await?;
        let issuing = status
            .and_then(|s| s.rotation.as_ref())
            .is_some_and(|r| r.phase == CaRotationPhase::IssuingFromNewCA);
        let serving = match (issuing, keys.current.as_ref()) {
            (true, Some(current)) => self.serving(cluster, &current.crt).await?,
            _ => true,
        };
        let ca_not_after = keys.current.as_ref().and_then(|p| certs::not_after(p.crt.as_bytes()));
        Ok(next_rotation_step(&RotationInputs {
            ca: &keys,
            status,
            leaves: &leaves,
            rolled,
            serving,
            requested,
            ca_not_after,
            lifetimes,
            now: etcd_operator_common::time::now(),
        }))
    }

    /// The CA Secret's keys.
    async fn ca_keys(&self, ctx: &TemplateContext<'_>) -> Result<CaKeys, ServiceError> {
        let view = self.core.read_secret(&ctx.names.namespace, &ctx.names.ca_secret()).await?;
        Ok(CaKeys::of(view.data.as_ref()))
    }

    /// The issuing CA and the bundle every certificate Secret's `ca.crt` holds now.
    async fn issuing_ca(&self, ctx: &TemplateContext<'_>) -> Result<(Pair, String), ServiceError> {
        issuing(self.ca_keys(ctx).await?)
    }

    /// Each certificate Secret as read.
    async fn leaf_data(
        &self,
        ctx: &TemplateContext<'_>,
        cluster: &EtcdCluster,
    ) -> Result<Vec<(Purpose, SecretView)>, ServiceError> {
        let Some(tls) = cluster.tls_in_use() else { return Ok(vec![]) };
        let mut out = Vec::new();
        for purpose in PURPOSES {
            let name = secret_name(&ctx.names, tls, purpose);
            out.push((purpose, self.core.read_secret(&ctx.names.namespace, &name).await?));
        }
        Ok(out)
    }

    /// Whether the members run a pod template whose `annotation` is `want`, every pod on it and
    /// ready (a stopped cluster is: its members start on it).
    pub(super) async fn rolled_onto(
        &self,
        cluster: &EtcdCluster,
        annotation: &str,
        want: &str,
    ) -> Result<bool, ServiceError> {
        let names = self.core.names_of(cluster);
        let Some(sts) = self.core.managers(&names.namespace).statefulsets.get(&names.statefulset()).await?
        else {
            return Ok(true);
        };
        let has = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(annotation))
            .cloned()
            .unwrap_or_default();
        let state = StatefulSetState::of(&sts);
        Ok(has == want && !state.rolling() && state.ready == state.replicas)
    }

    /// Whether every member serves a certificate of `ca` on its client and peer ports; a member
    /// that does not answer does not (its pod may start with the old certificate mounted).
    async fn serving(&self, cluster: &EtcdCluster, ca: &str) -> Result<bool, ServiceError> {
        let names = self.core.names_of(cluster);
        let options = self.core.etcd_options(cluster).await?;
        let replicas = cluster.status.as_ref().map_or(0, |s| s.current_size);
        for i in 0..replicas {
            let member = names.member(i);
            for endpoint in [names.client_url(&member), names.peer_url(&member)] {
                let served = match served_certificate(&endpoint, &options).await {
                    Ok(der) => der,
                    Err(e) => {
                        tracing::info!(%endpoint, error = %e, "waiting for the new certificate to be served");
                        return Ok(false);
                    }
                };
                if !certs::signed_der(&served, ca) {
                    tracing::info!(%endpoint, "still serves a certificate of the old CA");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Keeps a new CA as `next` beside the issuing one; conditional on the Secret as read, so two
    /// replicas never keep two different new CAs.
    async fn add_next_ca(&self, cluster: &EtcdCluster) -> Result<(), ServiceError> {
        let ctx = self.core.template(cluster);
        // Keys and version from one read: the write is conditional on exactly what was decided from.
        let read = self.core.managers(&ctx.names.namespace).secrets.get(&ctx.names.ca_secret()).await?;
        let data = read
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect::<BTreeMap<_, _>>());
        let current = CaKeys::of(data.as_ref()).current.ok_or_else(|| internal("the CA Secret has no CA"))?;
        let next = certs::issue_ca(&ctx.names, etcd_operator_common::time::now()).map_err(internal)?;
        let mut secret =
            ca_secret(&ctx, &current.crt, &current.key, &[("next.crt", &next.crt), ("next.key", &next.key)])?;
        secret.metadata.resource_version = read.and_then(|s| s.metadata.resource_version);
        self.core.managers_as(&ctx.names.namespace, component::SECURITY).secrets.apply(&secret).await?;
        Ok(())
    }

    /// The new CA issues from now on; the old one stays trusted as `previous`.
    async fn promote_next(&self, cluster: &EtcdCluster) -> Result<(), ServiceError> {
        let ctx = self.core.template(cluster);
        let keys = self.ca_keys(&ctx).await?;
        let (Some(current), Some(next)) = (keys.current, keys.next) else {
            return Err(internal("the CA Secret lacks the CA or the new CA"));
        };
        self.write_ca(&ctx, &next, &[("previous.crt", &current.crt)]).await
    }

    async fn write_ca(
        &self,
        ctx: &TemplateContext<'_>,
        ca: &Pair,
        extra: &[(&str, &str)],
    ) -> Result<(), ServiceError> {
        let secret = ca_secret(ctx, &ca.crt, &ca.key, extra)?;
        self.core.managers_as(&ctx.names.namespace, component::SECURITY).secrets.apply(&secret).await?;
        Ok(())
    }

    /// Rewrites `ca.crt` of these certificate Secrets to the CA Secret's bundle, keeping their
    /// certificates and keys.
    async fn set_bundle(&self, cluster: &EtcdCluster, purposes: &[Purpose]) -> Result<(), ServiceError> {
        let ctx = self.core.template(cluster);
        let (_, bundle) = self.issuing_ca(&ctx).await?;
        let secrets = self.core.managers_as(&ctx.names.namespace, component::SECURITY).secrets;
        for (purpose, secret) in self.leaf_data(&ctx, cluster).await? {
            let Some(data) = secret.data.filter(|_| purposes.contains(&purpose)) else { continue };
            let text =
                |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
            let secret = certificate_secret(&ctx, purpose, &text("tls.crt"), &text("tls.key"), &bundle)?;
            secrets.apply(&secret).await?;
        }
        Ok(())
    }

    /// Writes `status.certificateAuthority` as the security component (other fields untouched).
    async fn record(&self, r: &ClusterRef, record: &CertificateAuthorityStatus) -> Result<(), ServiceError> {
        let field = serde_json::json!({ "certificateAuthority": record });
        self.core.apply_status_field(r, component::SECURITY, field).await
    }

    async fn event(&self, cluster: &EtcdCluster, reason: &str, note: &str) {
        let note = crate::events::Note { type_: EventType::Normal, reason, action: "RotateCA", note };
        self.core.announce(cluster, component::SECURITY, note).await;
    }
}

/// The issuing CA and the bundle every certificate Secret's `ca.crt` holds with these keys.
pub(crate) fn issuing(keys: CaKeys) -> Result<(Pair, String), ServiceError> {
    let bundle = keys.bundle();
    let ca = keys.current.ok_or_else(|| internal("the CA Secret has no CA"))?;
    Ok((ca, bundle))
}
