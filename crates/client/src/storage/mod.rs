//! Backup storage: one abstraction (object_store) over a local directory (a
//! mounted volume) and S3-compatible object stores. Objects are streamed in
//! both directions, so a snapshot is never held in memory whole.

mod writer;

use std::{path::Path, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, aws::AmazonS3Builder,
    local::LocalFileSystem, path::Path as ObjectPath, prefix::PrefixStore,
};
use sha2::{Digest, Sha256};

pub use writer::ObjectWriter;

use crate::{
    ClientError,
    transfer::{Progress, Transferred},
};

/// Largest small object [`ObjectStorage::get`] reads: checksums and metadata are a few hundred
/// bytes.
pub const SMALL_OBJECT_MAX: u64 = 64 << 10;

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the storage root.
    pub key: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// Which version of a stored object: what a verification of it is cached by. A rewritten
/// object changes its modification time (and, on S3, its ETag) even at the same size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectVersion {
    /// Size in bytes.
    pub size_bytes: u64,
    /// The store's entity tag, when it gives one.
    pub e_tag: Option<String>,
    /// Last modification (RFC 3339).
    pub last_modified: String,
}

impl ObjectVersion {
    fn of(meta: &object_store::ObjectMeta) -> Self {
        Self {
            size_bytes: meta.size,
            e_tag: meta.e_tag.clone(),
            last_modified: meta.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }
}

/// Where an S3-compatible bucket is and how to sign requests to it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket ("" for the bucket root).
    pub prefix: String,
    /// Endpoint URL for non-AWS stores (`http://` is allowed only when given here).
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Path-style addressing instead of virtual-hosted buckets.
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key never reaches a log line.
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// A place snapshots are kept.
#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl ObjectStorage {
    /// Storage in a local directory (created if missing); objects appear only once complete.
    pub fn local(root: &Path) -> Result<Self, ClientError> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root).map_err(ClientError::from)?;
        Ok(Self { store: Arc::new(store), url: format!("file://{}", root.display()) })
    }

    /// Storage in an S3-compatible bucket.
    pub fn s3(settings: &S3Settings) -> Result<Self, ClientError> {
        // reqwest is built without a bundled TLS provider; use ring, as kube does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = settings.endpoint.clone().unwrap_or_default();
        let options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(settings.region.clone().unwrap_or_else(|| "us-east-1".into()))
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_client_options(options)
            // Fail within about half a minute so the caller's backoff (and status) takes over.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            });
        if !endpoint.is_empty() {
            builder = builder.with_endpoint(&endpoint);
        }
        let s3 = builder.build().map_err(ClientError::from)?;
        let prefix = settings.prefix.trim_matches('/');
        let url = format!("s3://{}/{prefix}", settings.bucket);
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, ObjectPath::parse(prefix).map_err(invalid)?))
        };
        Ok(Self { store, url })
    }

    /// Where this storage is, for status and logs (`file:///…` or `s3://bucket/prefix`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a streaming writer for a new object; it becomes visible only on [`ObjectWriter::commit`].
    pub fn writer(&self, key: &str) -> Result<ObjectWriter, ClientError> {
        Ok(ObjectWriter::new(self.store.clone(), path(key)?))
    }

    /// Streams an object's content.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, ClientError>>, ClientError> {
        let result = self.store.get(&path(key)?).await?;
        Ok(result.into_stream().map_err(ClientError::from).boxed())
    }

    /// The version of a stored object; `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectVersion>, ClientError> {
        match self.store.head(&path(key)?).await {
            Ok(meta) => Ok(Some(ObjectVersion::of(&meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Size and SHA-256 (hex) of a stored object, read as a stream.
    pub async fn digest(&self, key: &str) -> Result<(u64, String), ClientError> {
        let (_, size, sha256) = self.digest_version(key, &Progress::default()).await?;
        Ok((size, sha256))
    }

    /// [`ObjectStorage::digest`] with the version read (one request, so the version is that of
    /// the bytes hashed), publishing the bytes read after every chunk.
    pub async fn digest_version(
        &self,
        key: &str,
        progress: &Progress,
    ) -> Result<(ObjectVersion, u64, String), ClientError> {
        let result = self.store.get(&path(key)?).await?;
        let version = ObjectVersion::of(&result.meta);
        let total = Some(version.size_bytes);
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            progress.send_replace(Transferred { bytes: size, total });
            crate::transfer::test_pace().await;
        }
        Ok((version, size, hex::encode(hasher.finalize())))
    }

    /// Writes a small object in one request (atomic).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.store.put(&path(key)?, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Reads a small object (a checksum, a backup's metadata) whole; `None` when it does not
    /// exist. One larger than [`SMALL_OBJECT_MAX`] is refused unread: whoever can write to a
    /// bucket must not be able to make the operator hold a snapshot-sized file in memory.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ClientError> {
        match self.store.get(&path(key)?).await {
            Ok(r) if r.meta.size > SMALL_OBJECT_MAX => Err(ClientError::StorageRefused(format!(
                "{key} is {} bytes; such a file is read only up to {SMALL_OBJECT_MAX}",
                r.meta.size
            ))),
            Ok(r) => Ok(Some(r.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists objects under `prefix` (a key prefix ending at a `/` boundary, or "").
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, ClientError> {
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() { None } else { Some(path(prefix)?) };
        let mut out: Vec<StoredObject> = self
            .store
            .list(prefix.as_ref())
            .map_ok(|m| StoredObject { key: m.location.to_string(), size_bytes: m.size })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes an object; deleting a missing object succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), ClientError> {
        match self.store.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A key as an object path: relative, no empty, `.` or `..` segments.
fn path(key: &str) -> Result<ObjectPath, ClientError> {
    let bad = key.is_empty() || key.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(ClientError::InvalidArgument(format!(
            "backup key {key:?} must be a relative path of non-empty segments without '.' or '..'"
        )));
    }
    ObjectPath::parse(key).map_err(invalid)
}

fn invalid(e: object_store::path::Error) -> ClientError {
    ClientError::InvalidArgument(e.to_string())
}
