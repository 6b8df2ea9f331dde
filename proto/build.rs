//! Compiles kauri/v1/*.proto with protox (pure Rust), so no system `protoc`
//! is needed.

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
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Scripts read `kauri --output json`, which prints these messages.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .type_attribute(".", "#[serde(rename_all = \"snake_case\")]")
        .compile_fds(fds)?;
    Ok(())
}
