//! CPU cost of one password hash (PBKDF2-HMAC-SHA256, 100,000 iterations),
//! natively: `cargo bench --bench password`.
//!
//! The same code compiled to wasm32 runs inside workerd; `npm run bench`
//! estimates that cost through the API (login minus a plain authenticated call).

use std::time::Instant;

use conversation_api::auth::password::{hash, verify, DEFAULT_ITERATIONS, SALT_LEN};

fn main() {
    let runs = 20;
    let salt = [42u8; SALT_LEN];
    let _warm = hash("warm-up-password-1", &salt, DEFAULT_ITERATIONS);
    let mut ms: Vec<f64> = (0..runs)
        .map(|i| {
            let start = Instant::now();
            let stored = hash(&format!("bench-password-{i}"), &salt, DEFAULT_ITERATIONS);
            let elapsed = start.elapsed().as_secs_f64() * 1000.0;
            std::hint::black_box(stored);
            elapsed
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let stored = hash("bench-password-x", &salt, DEFAULT_ITERATIONS);
    let start = Instant::now();
    std::hint::black_box(verify("bench-password-y", &stored));
    let verify_ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "password hash, PBKDF2-HMAC-SHA256 x {DEFAULT_ITERATIONS}, native, {runs} runs: \
         min {:.1} ms, median {:.1} ms, max {:.1} ms; one verify {:.1} ms",
        ms[0],
        ms[runs / 2],
        ms[runs - 1],
        verify_ms
    );
}
