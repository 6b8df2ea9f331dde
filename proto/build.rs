//! Compiles kauri/v1/*.proto with protox (pure Rust), so no system `protoc`
//! is needed, and writes the encoded `FileDescriptorSet` (with comments) to
//! `OUT_DIR` for the nodes' server reflection.

use std::path::PathBuf;

/// The file in `OUT_DIR` that `kauri_proto::FILE_DESCRIPTOR_SET` includes.
const DESCRIPTOR_FILE: &str = "kauri_v1_descriptor.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "kauri/v1/errors.proto",
        "kauri/v1/common.proto",
        "kauri/v1/registry.proto",
        "kauri/v1/admin.proto",
        "kauri/v1/cluster.proto",
        "kauri/v1/raft.proto",
        "kauri/v1/log.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let mut compiler = protox::Compiler::new(["."])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(files)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Scripts read `kauri --output json`, which prints these messages.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .type_attribute(".", "#[serde(rename_all = \"snake_case\")]")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
