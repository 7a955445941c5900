//! A streaming upload that is either committed whole or not at all.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use object_store::{ObjectStore, buffered::BufWriter, path::Path};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::ClientError;

/// Writes one object in parts (multipart upload for large objects).
pub struct ObjectWriter {
    inner: BufWriter,
    key: String,
}

impl ObjectWriter {
    pub(super) fn new(store: Arc<dyn ObjectStore>, path: Path) -> Self {
        Self { key: path.to_string(), inner: BufWriter::new(store, path) }
    }

    /// Finishes the upload: the object becomes visible, whole.
    pub async fn commit(mut self) -> Result<(), ClientError> {
        self.inner.shutdown().await.map_err(|e| ClientError::storage(&self.key, e))
    }

    /// Abandons the upload; nothing becomes visible.
    pub async fn abort(mut self) {
        if let Err(e) = self.inner.abort().await {
            tracing::warn!(key = self.key, "aborting an upload failed (the store expires it): {e}");
        }
    }
}

impl AsyncWrite for ObjectWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
