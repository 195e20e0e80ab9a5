//! Gives the shared object libzmq's SONAME, so programs linked against
//! libzmq.so.5 load ferromq's instead.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzmq.so.5");
    println!("cargo:rerun-if-changed=build.rs");
}
