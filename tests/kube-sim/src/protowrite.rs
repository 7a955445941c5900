//! Writing the protobuf wire format: what kube-sim's protobuf answers (Kubernetes objects,
//! gnostic's OpenAPI document) are made of.

/// A varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (strings, bytes, messages).
pub fn bytes(out: &mut Vec<u8>, tag: u32, data: &[u8]) {
    varint(out, u64::from(tag) << 3 | 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A string field.
pub fn text(out: &mut Vec<u8>, tag: u32, s: &str) {
    bytes(out, tag, s.as_bytes());
}

/// A varint field (integers, two's complement for negative ones, and booleans).
pub fn number(out: &mut Vec<u8>, tag: u32, v: u64) {
    varint(out, u64::from(tag) << 3);
    varint(out, v);
}

/// A double field.
pub fn double(out: &mut Vec<u8>, tag: u32, v: f64) {
    varint(out, u64::from(tag) << 3 | 1);
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}
