//! Generates the gRPC services and messages of `proto/weir/cluster/v1/cluster.proto` with
//! the protoc binary vendored as a crate, so a build needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/weir/cluster/v1/cluster.proto");
    tonic_prost_build::configure().compile_protos(&["proto/weir/cluster/v1/cluster.proto"], &["proto"])?;
    Ok(())
}
