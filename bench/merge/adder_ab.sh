#!/bin/sh
# The merge's per-line work (src/record/adder.rs) of two commits side by side, in release, on
# the same shard logs in the same run: a ratio that does not need two release builds of
# peakload (40-90 min each on a busy 2-core machine). See adder-ab/pipeline.rs.
#
# Usage: bench/merge/adder_ab.sh OLD_REV REPEAT LOG...   (REPEAT: each line added that many
# times, e.g. the logs of 10 shards with REPEAT=10 for 100 shards' worth of lines per second)
# Needs the registry crates already fetched (it builds --offline with the repository's lock).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
old=$1 repeat=$2
shift 2
dir=${WORK:-/tmp/peakload-adder-ab}
mkdir -p "$dir/src/bin"
cp "$root/Cargo.lock" "$dir/"
cat >"$dir/Cargo.toml" <<'TOML'
[package]
name = "adder_ab"
version = "0.1.0"
edition = "2021"

[dependencies]
base64 = "0.22"
flate2 = "1"
zlib-rs = { version = "0.6", default-features = false, features = ["std", "rust-allocator"] }
hdrhistogram = { version = "7.5", default-features = false, features = ["serialization"] }

[profile.release]
debug = "line-tables-only"
codegen-units = 4
TOML
cat >"$dir/src/lib.rs" <<'RS'
pub mod results {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
    use hdrhistogram::Histogram;
    pub fn encode_histogram(h: &Histogram<u64>) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new().serialize(h, &mut buf).unwrap();
        base64::engine::general_purpose::STANDARD.encode(buf)
    }
    pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
        let b = base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| e.to_string())?;
        Deserializer::new().deserialize(&mut b.as_slice()).map_err(|e| format!("{e:?}"))
    }
}
#[allow(dead_code)]
pub mod new;
#[allow(dead_code)]
pub mod old;
RS
# The tests need the rest of the crate: only the code before them is taken.
strip() { sed '/^#\[cfg(test)\]/,$d'; }
git -C "$root" show "$old:src/record/adder.rs" | strip >"$dir/src/old.rs"
strip <"$root/src/record/adder.rs" >"$dir/src/new.rs"
cp "$here/adder-ab/pipeline.rs" "$dir/src/bin/"
(cd "$dir" && CARGO_TARGET_DIR="$dir/target" cargo build --release --offline -q)
for which in old new old new; do
  "$dir/target/release/pipeline" "$which" "$repeat" "$@"
done
