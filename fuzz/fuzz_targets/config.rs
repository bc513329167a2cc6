//! Any text as a config file: validated or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = globalscale::config::Config::from_toml_str(text);
    }
});
