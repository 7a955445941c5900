//! The one protobuf body kube-sim reads: kubectl sends TokenRequests
//! (`kubectl create token`) only as `application/vnd.kubernetes.protobuf`,
//! with no JSON fallback. Kubernetes wraps every protobuf object in an
//! envelope: the magic `k8s\0`, then a `runtime.Unknown` whose field 2 holds
//! the object. Answers stay JSON (clients accept both).

use serde_json::{Value, json};

/// Kubernetes' content type for protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// A protobuf field's value: a varint or length-delimited bytes (the only wire types used here).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a message, in order; `None` for malformed input or other wire types.
fn fields(mut buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut buf)?),
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                let bytes = buf.get(..len)?;
                buf = &buf[len..];
                Field::Bytes(bytes)
            }
            _ => return None,
        };
        out.push((key >> 3, field));
    }
    Some(out)
}

fn text(f: &Field<'_>) -> Option<String> {
    match f {
        Field::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Field::Varint(_) => None,
    }
}

/// The object inside Kubernetes' protobuf envelope.
fn unwrap(body: &[u8]) -> Option<&[u8]> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    fields(unknown)?.into_iter().find_map(|(n, f)| match (n, f) {
        (2, Field::Bytes(raw)) => Some(raw),
        _ => None,
    })
}

/// A protobuf TokenRequest as the JSON kube-sim handles: `spec.audiences` (1),
/// `spec.boundObjectRef` (3: kind 1, apiVersion 2, name 3, uid 4), `spec.expirationSeconds` (4).
pub fn token_request(body: &[u8]) -> Option<Value> {
    let request = fields(unwrap(body)?)?;
    let mut spec = json!({});
    let mut audiences = Vec::new();
    for (n, f) in &request {
        let (2, Field::Bytes(raw)) = (n, f) else { continue };
        for (n, f) in fields(raw)? {
            match (n, &f) {
                (1, _) => audiences.push(text(&f)?),
                (4, Field::Varint(v)) => spec["expirationSeconds"] = json!(v),
                (3, Field::Bytes(bound)) => {
                    let mut r = json!({});
                    for (n, f) in fields(bound)? {
                        let key = match n {
                            1 => "kind",
                            2 => "apiVersion",
                            3 => "name",
                            4 => "uid",
                            _ => continue,
                        };
                        r[key] = json!(text(&f)?);
                    }
                    spec["boundObjectRef"] = r;
                }
                _ => {}
            }
        }
    }
    spec["audiences"] = json!(audiences);
    Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![n << 3 | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_token_request_is_read_from_its_envelope() {
        // spec: audiences ["etcd-operator", "x"], expirationSeconds 86400, boundObjectRef Pod/p.
        let mut spec = field(1, b"etcd-operator");
        spec.extend(field(1, b"x"));
        spec.extend([4 << 3, 0x80, 0xa3, 0x05]);
        spec.extend(field(3, &[field(1, b"Pod"), field(3, b"p")].concat()));
        let request = field(2, &spec);
        let mut body = b"k8s\0".to_vec();
        body.extend(field(1, b""));
        body.extend(field(2, &request));
        let v = token_request(&body).unwrap();
        assert_eq!(v["spec"]["audiences"], json!(["etcd-operator", "x"]));
        assert_eq!(v["spec"]["expirationSeconds"], 86400);
        assert_eq!(v["spec"]["boundObjectRef"], json!({"kind": "Pod", "name": "p"}));
        assert!(token_request(b"{\"spec\": {}}").is_none(), "not an envelope");
        assert!(token_request(b"k8s\0\x12\x05ab").is_none(), "truncated");
    }
}
