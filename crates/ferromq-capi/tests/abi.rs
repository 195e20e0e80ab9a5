//! The C ABI's shape against libzmq 4.3.5's own header (from the `zeromq-src`
//! 0.3.6 crate): every `ZMQ_*` macro, the 70 exported functions, the SONAME,
//! struct layouts, and a real exchange from C through the built library.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// libzmq 4.3.5's include directory inside the zeromq-src crate.
fn reference_include() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(manifest_dir())
        .output()
        .expect("cargo metadata");
    let text = String::from_utf8(out.stdout).unwrap();
    let key = "\"manifest_path\":\"";
    let manifest = text
        .split(key)
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|p| p.contains("zeromq-src-0.3.6"))
        .expect("zeromq-src 0.3.6 in cargo metadata");
    Path::new(manifest).parent().unwrap().join("vendor/include")
}

/// `#define ZMQ_*` lines from a header, whitespace-normalised.
fn macros(include: &Path) -> BTreeSet<String> {
    let src = std::env::temp_dir().join(format!("ferromq-abi-{}.c", std::process::id()));
    std::fs::write(&src, "#include <zmq.h>\n").unwrap();
    let out = Command::new("gcc")
        .arg("-E")
        .arg("-dM")
        .arg("-I")
        .arg(include)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("#define ZMQ_"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The shared library, built now if needed: `cargo test` links integration
/// tests against the rlib and does not always produce the cdylib.
fn library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/abi-… -> target/<profile>
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let target_dir = profile_dir.parent().unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "ferromq-capi", "--lib"])
                .arg("--target-dir")
                .arg(target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let out = cmd
                .current_dir(manifest_dir())
                .output()
                .expect("cargo build");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lib = profile_dir.join("libzmq.so");
            assert!(lib.exists(), "{} not built", lib.display());
            lib
        })
        .clone()
}

#[test]
fn header_macros_equal_libzmq_4_3_5() {
    let ours = macros(&manifest_dir().join("include"));
    let theirs = macros(&reference_include());
    assert_eq!(theirs.len(), 182, "reference header changed?");
    let missing: Vec<_> = theirs.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&theirs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
}

#[test]
fn exports_every_stable_function_and_the_soname() {
    // The reference's stable function names, from its preprocessed header.
    let src = std::env::temp_dir().join(format!("ferromq-abi-fn-{}.c", std::process::id()));
    std::fs::write(&src, "#include <zmq.h>\n").unwrap();
    let out = Command::new("gcc")
        .arg("-E")
        .arg("-P")
        .arg("-I")
        .arg(reference_include())
        .arg(&src)
        .output()
        .unwrap();
    let pre = String::from_utf8(out.stdout).unwrap().replace(" (", "(");
    // Identifiers `zmq_…` directly followed by `(`: the declared functions
    // (typedefs of function types end in `_fn` and are skipped).
    let mut want = BTreeSet::new();
    for (i, _) in pre.match_indices("zmq_") {
        let name: String = pre[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let before_ok = i == 0 || !pre[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if before_ok && pre[i + name.len()..].starts_with('(') && !name.ends_with("_fn") {
            want.insert(name);
        }
    }
    assert_eq!(want.len(), 70);
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library())
        .output()
        .expect("nm");
    let have: BTreeSet<String> = String::from_utf8(nm.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|n| n.starts_with("zmq_"))
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = want.difference(&have).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(
        extra.is_empty(),
        "exported beyond the stable API: {extra:?}"
    );
    let elf = Command::new("readelf")
        .arg("-d")
        .arg(library())
        .output()
        .expect("readelf");
    assert!(String::from_utf8_lossy(&elf.stdout).contains("Library soname: [libzmq.so.5]"));
}

#[test]
fn c_program_links_and_talks() {
    // The loader looks for the SONAME, libzmq.so.5: stage it like an install.
    let dir = std::env::temp_dir().join(format!("ferromq-abi-lib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lib = dir.join("libzmq.so.5");
    let _ = std::fs::remove_file(&lib);
    std::os::unix::fs::symlink(library(), &lib).unwrap();
    let exe = dir.join("abi-check");
    let cc = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(manifest_dir().join("tests/abi_check.c"))
        .arg("-I")
        .arg(manifest_dir().join("include"))
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .output()
        .expect("gcc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "abi ok");
}
