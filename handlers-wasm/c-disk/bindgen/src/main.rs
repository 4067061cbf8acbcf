//! `tcmu-c-bindgen WIT_DIR WORLD OUT_DIR`: write the C bindings of WORLD —
//! `<world>.h`, `<world>.c` and `<world>_component_type.o` — as
//! `wit-bindgen c WIT_DIR --world WORLD --out-dir OUT_DIR` does with its
//! default options (same generator, same version).

use std::path::PathBuf;

use anyhow::{Context, bail};
use wit_bindgen_core::Files;
use wit_parser::Resolve;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [wit, world, out] = args.as_slice() else {
        bail!("usage: tcmu-c-bindgen WIT_DIR WORLD OUT_DIR");
    };
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(wit).with_context(|| format!("reading the WIT in {wit}"))?;
    let world = resolve.select_world(&[package], Some(world))?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default().build().generate(&mut resolve, world, &mut files)?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
