//! The afl target: each input is a connection's bytes, read as EPP frames
//! and each frame parsed as the gateway does (kauri_gateway_fuzz::frames).
//! Build and run it with scripts/fuzz-gateway.sh; outside afl it reads one
//! input on stdin, which replays a saved crash.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        kauri_gateway_fuzz::frames(data);
    });
}
