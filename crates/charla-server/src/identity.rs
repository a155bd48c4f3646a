//! Stable identities without accounts (docs/protocol.md, rule 49).
//!
//! A client asks once for a secret and keeps it (the browser in
//! `localStorage`); presenting it later makes the connection the same
//! member. The member id is derived from the secret, so the server stores
//! nothing: every node and every restart derive the same id, and knowing an
//! id does not let anyone present it (that takes a SHA-256 preimage).

use charla_protocol::{SECRET_CHARS, Secret};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Hex digits of a member id derived from a secret (as long as a session
/// id's, 64 bits).
pub(crate) const IDENTITY_ID_CHARS: usize = 16;

/// Separates Charla's use of SHA-256 from any other use of the same secret.
const DOMAIN: &[u8] = b"charla identity v1\0";

/// A fresh secret: 32 bytes from the operating system's generator, as hex.
pub(crate) fn issue() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; SECRET_CHARS / 2];
    getrandom::fill(&mut bytes)?;
    let secret = hex(&bytes);
    Ok(Secret::parse(&secret).expect("hex of 32 bytes is a valid secret"))
}

/// The member id of the identity holding `secret`.
pub(crate) fn member_id(secret: &Secret) -> String {
    let digest = Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(secret.expose().as_bytes())
        .finalize();
    let mut id = hex(&digest);
    id.truncate(IDENTITY_ID_CHARS);
    id
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_always_gives_the_same_id_and_two_secrets_two_ids() {
        let one = issue().unwrap();
        let two = issue().unwrap();
        assert_ne!(one, two);
        assert_eq!(member_id(&one), member_id(&one.clone()));
        assert_ne!(member_id(&one), member_id(&two));
        let id = member_id(&one);
        assert_eq!(id.len(), IDENTITY_ID_CHARS);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_id_of_a_known_secret_is_fixed() {
        // Pinned: ids must not change between releases, or every stored
        // message would stop being its author's.
        // (python3: hashlib.sha256(b'charla identity v1\0' + b'ab' * 32))
        let secret = Secret::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(member_id(&secret), "98b8c3d0062e7c3f");
    }
}
