//! Backup storage: where snapshots are written and read back.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWrite;

use crate::ClientError;

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the storage root.
    pub key: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// A place snapshots are kept (a directory on a volume, an object store, ...).
#[async_trait]
pub trait BackupStorage: Send + Sync {
    /// Opens a writer for a new object; the object appears only after [`BackupStorage::commit`].
    async fn create(&self, key: &str) -> Result<Box<dyn AsyncWrite + Send + Unpin>, ClientError>;
    /// Makes an object written through [`BackupStorage::create`] visible.
    async fn commit(&self, key: &str) -> Result<StoredObject, ClientError>;
    /// Reads a whole object.
    async fn get(&self, key: &str) -> Result<Vec<u8>, ClientError>;
    /// Lists objects whose key starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, ClientError>;
    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), ClientError>;
}

/// Backup storage in a local directory (a mounted PVC); writes are atomic by rename.
#[derive(Clone, Debug)]
pub struct FilesystemStorage {
    root: PathBuf,
}

impl FilesystemStorage {
    /// Storage rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, ClientError> {
        let rel = Path::new(key);
        let safe = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(ClientError::InvalidArgument(format!(
                "backup key {key:?} must be a relative path without '..'"
            )));
        }
        Ok(self.root.join(rel))
    }

    fn partial(path: &Path) -> PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push(".partial");
        PathBuf::from(p)
    }
}

#[async_trait]
impl BackupStorage for FilesystemStorage {
    async fn create(&self, key: &str) -> Result<Box<dyn AsyncWrite + Send + Unpin>, ClientError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        Ok(Box::new(tokio::fs::File::create(Self::partial(&path)).await?))
    }

    async fn commit(&self, key: &str) -> Result<StoredObject, ClientError> {
        let path = self.path(key)?;
        let partial = Self::partial(&path);
        tokio::fs::File::open(&partial).await?.sync_all().await?;
        tokio::fs::rename(&partial, &path).await?;
        let size_bytes = tokio::fs::metadata(&path).await?.len();
        Ok(StoredObject { key: key.to_owned(), size_bytes })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ClientError> {
        Ok(tokio::fs::read(self.path(key)?).await?)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, ClientError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let meta = entry.metadata().await?;
                if meta.is_dir() {
                    dirs.push(entry.path());
                    continue;
                }
                let key = entry
                    .path()
                    .strip_prefix(&self.root)
                    .unwrap_or(&entry.path())
                    .to_string_lossy()
                    .into_owned();
                if key.starts_with(prefix) && !key.ends_with(".partial") {
                    out.push(StoredObject { key, size_bytes: meta.len() });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), ClientError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
