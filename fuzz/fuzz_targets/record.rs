//! Any bytes a store could hand back: `SessionRecord::from_json` is an error, never a
//! panic, and a record it accepts survives `to_json` unchanged.
#![no_main]

use actix_express_session::SessionRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = SessionRecord::from_json(data) else {
        return;
    };
    // Every accessor works on whatever was stored.
    let c = &record.cookie;
    let _ = (
        c.max_age(),
        c.original_max_age(),
        c.expires(),
        c.expires_unix_ms(),
        c.secure(),
    );
    let _ = (
        c.http_only(),
        c.domain(),
        c.path(),
        c.same_site(),
        c.priority(),
        c.partitioned(),
    );
    let json = record.to_json();
    let again = match SessionRecord::from_json(json.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("to_json wrote a record from_json rejects: {e}\n{json}"),
    };
    assert_eq!(again, record, "{json}");
    assert_eq!(again.to_json(), json, "to_json is not stable");
    assert_eq!(again.fingerprint(), record.fingerprint());
});
