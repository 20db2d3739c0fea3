//! Prints how long building the documents takes and how large each is:
//! `cargo run --release -p ferrokube-openapi --example sizes`.

#[path = "../tests/common/mod.rs"]
mod common;

use ferrokube_openapi::OpenApi;
use std::time::Instant;

fn main() {
    let resources = common::resources();
    let start = Instant::now();
    let api = OpenApi::build(&resources);
    println!(
        "build: {:.1} ms for {} resources",
        start.elapsed().as_secs_f64() * 1e3,
        resources.len()
    );
    println!("/openapi/v3: {} bytes", api.v3_root_document().json.len());
    for path in api.v3_paths() {
        if let Some((json, hash)) = api.v3_group_version(path) {
            println!("/openapi/v3/{path}: {} bytes (hash {hash})", json.len());
        }
    }
    println!(
        "/openapi/v2: {} bytes JSON, {} bytes protobuf",
        api.v2().json.len(),
        api.v2_protobuf().0.len()
    );
}
