//! Checking a proof that a device holds a ticket's secret (a pairing ticket, a clinic's
//! invitation) without leaking, through how long the check takes, how much of it matched.

use subtle::ConstantTimeEq;

/// Whether a proof a device sent equals the one expected, compared in constant time.
pub fn proofs_match(expected: &[u8; 32], sent: &[u8; 32]) -> bool {
    expected[..].ct_eq(&sent[..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_proof_matches_and_any_differing_byte_does_not() {
        let proof = *blake3::hash(b"invitation").as_bytes();
        assert!(proofs_match(&proof, &proof));
        for i in [0, 15, 31] {
            let mut other = proof;
            other[i] ^= 0x80;
            assert!(!proofs_match(&proof, &other), "byte {i} differs");
        }
        assert!(!proofs_match(&proof, &[0; 32]));
    }
}
