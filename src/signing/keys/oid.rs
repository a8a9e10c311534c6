//! The object identifiers of the key files, and readable names for the ones a
//! refusal may have to mention (a cipher, a curve or a key type that squizzle
//! does not take). Only names: which identifiers are accepted is decided by
//! the readers in `encrypted` and `model`.

use const_oid::ObjectIdentifier;
use const_oid::db::{DB, rfc5912};

/// id-ecPublicKey (RFC 5480).
pub(super) const EC_PUBLIC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
/// prime256v1 / secp256r1, the curve P-256 (RFC 5480).
pub(super) const P256: ObjectIdentifier = rfc5912::SECP_256_R_1;

/// Names as OpenSSL and the RFCs spell them, for what `const_oid`'s database
/// lacks or names less plainly (it says `id-aes128-CBC`, `id-Ed25519`).
const NAMES: &[(ObjectIdentifier, &str)] = &[
    (pkcs5::pbes2::PBES2_OID, "PBES2"),
    (pkcs5::pbes2::PBKDF2_OID, "PBKDF2"),
    (pkcs5::pbes2::SCRYPT_OID, "scrypt"),
    (pkcs5::pbes2::HMAC_WITH_SHA1_OID, "hmacWithSHA1"),
    (pkcs5::pbes2::HMAC_WITH_SHA256_OID, "hmacWithSHA256"),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.2.8"),
        "hmacWithSHA224",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.2.10"),
        "hmacWithSHA384",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.2.11"),
        "hmacWithSHA512",
    ),
    (pkcs5::pbes2::AES_128_CBC_OID, "aes128-CBC"),
    (pkcs5::pbes2::AES_192_CBC_OID, "aes192-CBC"),
    (pkcs5::pbes2::AES_256_CBC_OID, "aes256-CBC"),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.3.7"),
        "des-ede3-cbc",
    ),
    (
        pkcs5::pbes1::PBE_WITH_MD5_AND_DES_CBC_OID,
        "pbeWithMD5AndDES-CBC",
    ),
    (
        pkcs5::pbes1::PBE_WITH_SHA1_AND_DES_CBC_OID,
        "pbeWithSHA1AndDES-CBC",
    ),
    (EC_PUBLIC_KEY, "id-ecPublicKey"),
    (P256, "P-256"),
    (rfc5912::SECP_384_R_1, "P-384"),
    (rfc5912::SECP_521_R_1, "P-521"),
    (rfc5912::RSA_ENCRYPTION, "rsaEncryption"),
    (ObjectIdentifier::new_unwrap("1.3.101.112"), "Ed25519"),
];

/// A readable name: `` `aes128-CBC` `` for a known identifier, else
/// `OID 1.2.3.4`.
pub(super) fn name(oid: &ObjectIdentifier) -> String {
    NAMES
        .iter()
        .find(|(known, _)| known == oid)
        .map(|(_, name)| *name)
        .or_else(|| DB.by_oid(oid))
        .map_or_else(|| format!("OID {oid}"), |name| format!("`{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(&pkcs5::pbes2::AES_128_CBC_OID), "`aes128-CBC`");
        assert_eq!(name(&P256), "`P-256`");
        // From const-oid's database.
        assert_eq!(name(&ObjectIdentifier::new_unwrap("2.5.4.3")), "`cn`");
        assert_eq!(
            name(&ObjectIdentifier::new_unwrap("1.2.3.4.5")),
            "OID 1.2.3.4.5"
        );
    }
}
