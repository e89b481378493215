use super::*;

/// Removes the test's own image on drop.
struct Image {
    engine: Engine,
    reference: Option<String>,
}

impl Drop for Image {
    fn drop(&mut self) {
        let Some(reference) = self.reference.take() else {
            return;
        };
        let engine = self.engine.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(engine.remove_image(&reference))
        })
        .join();
    }
}

#[tokio::test]
async fn the_postgres_image_builds_cold_then_comes_from_the_cache() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    // A repository of its own, so the first build really is cold.
    let spec = ImageSpec::postgres(15).in_repository(format!("prodhome-test/{}", unique("cold")));
    let mut guard = Image {
        engine: engine.clone(),
        reference: None,
    };
    let cold = engine.build_image(&spec).await.expect("cold build");
    guard.reference = Some(cold.reference.clone());
    assert!(!cold.cached, "{cold:?}");
    assert!(
        cold.packed_bytes > 50_000_000,
        "a Postgres image of only {} bytes",
        cold.packed_bytes
    );
    assert!(cold.reference.contains(":15-"), "{}", cold.reference);
    // Everything postgres and initdb load is in there: they run.
    let lab = Lab {
        name: unique("cold"),
        engine: engine.clone(),
    };
    for tool in ["postgres", "initdb"] {
        let code = engine
            .run_once(&lab.name, tool, &cold.reference, &[tool, "--version"])
            .await
            .unwrap();
        assert_eq!(code, 0, "{tool} --version in {}", cold.reference);
    }

    let cached = engine.build_image(&spec).await.expect("cached build");
    assert!(cached.cached, "{cached:?}");
    assert_eq!(cached.reference, cold.reference);
    assert_eq!(cached.id, cold.id);
    assert_eq!(cached.packed_bytes, 0);
}

#[tokio::test]
async fn a_binary_packs_into_a_tiny_image_that_runs() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    let lab = Lab {
        name: unique("binary"),
        engine: engine.clone(),
    };
    let spec = ImageSpec::binary("/usr/lib/postgresql/15/bin/pg_isready")
        .in_repository(format!("prodhome-test/{}", unique("bin")));
    let built = engine.build_image(&spec).await.expect("build");
    let _image = Image {
        engine: engine.clone(),
        reference: Some(built.reference.clone()),
    };
    assert!(built.packed_bytes < 40_000_000, "{} bytes", built.packed_bytes);
    // pg_isready with nothing to reach exits 2 ("no response"): it ran.
    let code = engine
        .run_once(
            &lab.name,
            "probe",
            &built.reference,
            &["-h", "127.0.0.1", "-p", "1"],
        )
        .await
        .expect("run");
    assert_eq!(code, 2);
}
