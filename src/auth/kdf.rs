//! Password hashing inside the worker. On wasm32 the PBKDF2 rounds run in
//! the runtime's WebCrypto (native code, several times faster than the same
//! rounds compiled to wasm); natively the pure-Rust [`password::derive`] runs.
//! Both produce the same PHC strings (the end-to-end tests mix them).

use super::password::{self, Verdict, HASH_LEN, SALT_LEN};

/// Hashes a password into a PHC string.
pub async fn hash(
    password: &str,
    salt: &[u8; SALT_LEN],
    iterations: u32,
) -> Result<String, String> {
    let derived = derive(password, salt, iterations).await?;
    Ok(password::format_phc(salt, iterations, &derived))
}

/// Verifies a password against a stored PHC string.
pub async fn verify(password: &str, stored: &str) -> Result<Verdict, String> {
    let Some((iterations, salt, expected)) = password::parse(stored) else {
        return Ok(Verdict::Malformed);
    };
    let derived = derive(password, &salt, iterations).await?;
    Ok(password::judge(&derived, &expected, iterations))
}

#[cfg(not(target_arch = "wasm32"))]
async fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<[u8; HASH_LEN], String> {
    Ok(password::derive(password, salt, iterations))
}

#[cfg(target_arch = "wasm32")]
async fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<[u8; HASH_LEN], String> {
    use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
    use worker::wasm_bindgen::{JsCast, JsValue};
    use worker::wasm_bindgen_futures::JsFuture;

    let fail = |what: &str, e: JsValue| format!("WebCrypto {what} failed: {e:?}");
    let get = |target: &JsValue, name: &str| {
        Reflect::get(target, &JsValue::from_str(name)).map_err(|e| fail(name, e))
    };
    let method = |target: &JsValue, name: &str| -> Result<Function, String> {
        get(target, name)?
            .dyn_into::<Function>()
            .map_err(|e| fail(name, e))
    };
    let subtle = get(&get(&worker::js_sys::global(), "crypto")?, "subtle")?;

    let import_args = Array::of5(
        &JsValue::from_str("raw"),
        &Uint8Array::from(password.as_bytes()).into(),
        &JsValue::from_str("PBKDF2"),
        &JsValue::FALSE,
        &Array::of1(&JsValue::from_str("deriveBits")).into(),
    );
    let imported: Promise = method(&subtle, "importKey")?
        .apply(&subtle, &import_args)
        .map_err(|e| fail("importKey", e))?
        .dyn_into()
        .map_err(|e| fail("importKey", e))?;
    let key = JsFuture::from(imported)
        .await
        .map_err(|e| fail("importKey", e))?;

    let params = Object::new();
    let set = |k: &str, v: JsValue| {
        Reflect::set(&params, &JsValue::from_str(k), &v).map_err(|e| fail("params", e))
    };
    set("name", JsValue::from_str("PBKDF2"))?;
    set("hash", JsValue::from_str("SHA-256"))?;
    set("salt", Uint8Array::from(salt).into())?;
    set("iterations", JsValue::from(iterations))?;
    let bits: Promise = method(&subtle, "deriveBits")?
        .call3(&subtle, &params, &key, &JsValue::from(HASH_LEN as u32 * 8))
        .map_err(|e| fail("deriveBits", e))?
        .dyn_into()
        .map_err(|e| fail("deriveBits", e))?;
    let buffer = JsFuture::from(bits)
        .await
        .map_err(|e| fail("deriveBits", e))?;
    let mut out = [0u8; HASH_LEN];
    Uint8Array::new(&buffer).copy_to(&mut out);
    Ok(out)
}
