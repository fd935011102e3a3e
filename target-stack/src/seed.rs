//! The seed data: users `user{i}@example.com` / `pw-{i}` and a catalogue of products, and the
//! password hashing both the seed and `POST /api/login` use.
//!
//! This is a test stack: passwords are stored as `sha256(salt || password)` with a random
//! per-user salt, cheap on purpose so that logins do not dominate a load test. Do not copy it
//! into a real service (use argon2 or scrypt there).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::store::{SeedProduct, SeedUser};

/// Stock of every product except the scarce ones.
pub const PLENTIFUL_STOCK: i64 = 1_000_000;
/// Stock of the last ten products, so that checkouts can run out.
pub const SCARCE_STOCK: i64 = 50;
/// How many products at the end of the catalogue are scarce.
pub const SCARCE_PRODUCTS: u32 = 10;

const ADJECTIVES: [&str; 10] = [
    "Red", "Blue", "Green", "Silver", "Golden", "Compact", "Deluxe", "Classic", "Smart", "Rugged",
];
const NOUNS: [&str; 20] = [
    "Kettle",
    "Toaster",
    "Lamp",
    "Backpack",
    "Headphones",
    "Blender",
    "Chair",
    "Desk",
    "Mug",
    "Jacket",
    "Sneakers",
    "Watch",
    "Camera",
    "Speaker",
    "Keyboard",
    "Monitor",
    "Drill",
    "Tent",
    "Bicycle",
    "Umbrella",
];

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn password_hash(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(password.as_bytes());
    hex(&h.finalize())
}

/// Compares two hashes in time independent of where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A random 128-bit hex string (session tokens, salts, request ids).
pub fn random_hex128() -> String {
    format!("{:032x}", fastrand::u128(..))
}

pub fn user_email(i: u32) -> String {
    format!("user{i}@example.com")
}

pub fn user_password(i: u32) -> String {
    format!("pw-{i}")
}

pub fn users(count: u32) -> Vec<SeedUser> {
    (1..=count)
        .map(|i| {
            let salt = random_hex128();
            let password_hash = password_hash(&salt, &user_password(i));
            SeedUser {
                email: user_email(i),
                salt,
                password_hash,
            }
        })
        .collect()
}

pub fn products(count: u32) -> Vec<SeedProduct> {
    let scarce_from = count.saturating_sub(SCARCE_PRODUCTS) + 1;
    (1..=count)
        .map(|i| {
            let n = i as usize - 1;
            SeedProduct {
                id: i64::from(i),
                name: format!(
                    "{} {} {i}",
                    ADJECTIVES[n % ADJECTIVES.len()],
                    NOUNS[(n / ADJECTIVES.len()) % NOUNS.len()]
                ),
                price_cents: 199 + (i64::from(i) * 137) % 9_800,
                stock: if i >= scarce_from {
                    SCARCE_STOCK
                } else {
                    PLENTIFUL_STOCK
                },
            }
        })
        .collect()
}

/// The feeder file for scenarios (`scenarios/data/users.csv`).
pub fn users_csv(count: u32) -> String {
    let mut out = String::from("email,password\n");
    for i in 1..=count {
        let _ = writeln!(out, "{},{}", user_email(i), user_password(i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_password_verifies() {
        let u = &users(3)[2];
        assert_eq!(u.email, "user3@example.com");
        assert!(hashes_equal(
            &password_hash(&u.salt, "pw-3"),
            &u.password_hash
        ));
        assert!(!hashes_equal(
            &password_hash(&u.salt, "pw-4"),
            &u.password_hash
        ));
    }

    #[test]
    fn last_ten_products_are_scarce() {
        let p = products(200);
        assert_eq!(p.len(), 200);
        assert_eq!(p[189].stock, PLENTIFUL_STOCK);
        assert!(p[190..]
            .iter()
            .all(|p| p.stock == SCARCE_STOCK && p.id >= 191));
    }

    #[test]
    fn committed_users_csv_matches_the_seed() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/data/users.csv");
        let committed = std::fs::read_to_string(path).expect("scenarios/data/users.csv");
        assert!(
            committed == users_csv(1000),
            "scenarios/data/users.csv is stale: regenerate with `peakload-stack users-csv > scenarios/data/users.csv`"
        );
    }
}
