//! Standard Webhooks' signatures (<https://www.standardwebhooks.com>): the secret shown as
//! `whsec_` and the base64 of the key's bytes; each message signed as
//! `v1,<base64 of HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a secret as Standard Webhooks writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// Bytes of a new signing key: 192 bits, within the 24 to 64 Standard Webhooks asks for.
pub const KEY_BYTES: usize = 24;

/// A new random signing key.
pub fn new_key() -> Vec<u8> {
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).expect("the operating system's random numbers");
    key
}

/// The key as shown to the administrator once: `whsec_...`.
pub fn secret_text(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Standard Webhooks' reference implementations.
    #[test]
    fn signs_as_the_reference_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let key = STANDARD
            .decode(secret.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(secret_text(&key), secret);
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    /// RFC 4231's second test case ("what do ya want for nothing?"), through the same HMAC.
    #[test]
    fn the_hmac_is_rfc_4231s() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keys_are_new_each_time_and_shown_whole() {
        let (one, two) = (new_key(), new_key());
        assert_ne!(one, two);
        let text = secret_text(&one);
        assert_eq!(
            STANDARD
                .decode(text.strip_prefix(SECRET_PREFIX).unwrap())
                .unwrap(),
            one
        );
    }
}
