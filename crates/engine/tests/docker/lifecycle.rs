use super::*;

#[tokio::test]
async fn stats_come_as_container_points_of_the_node() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    let lab = Lab {
        name: unique("stats"),
        engine: engine.clone(),
    };
    let (_, _, client) = node(&engine, &lab.name, "n1").await;
    client
        .batch_execute("CREATE TABLE t AS SELECT generate_series(1, 50000) AS id")
        .await
        .unwrap();
    let points: Vec<_> = engine.stats(&lab.name, "n1").take(2).collect().await;
    assert_eq!(points.len(), 2);
    let point = points.into_iter().last().unwrap().expect("a stats sample");
    assert_eq!(point.measurement, "container");
    assert_eq!(point.tags["lab"], lab.name);
    assert_eq!(point.tags["node"], "n1");
    let int = |field: &str| match point.fields[field] {
        model::FieldValue::I64(v) => v,
        ref other => panic!("{field} is {other:?}, not an integer"),
    };
    assert!(int("mem_bytes") > 1_000_000, "{point:?}");
    assert!(int("mem_limit_bytes") >= int("mem_bytes"), "{point:?}");
    assert!(
        matches!(point.fields["cpu_percent"], model::FieldValue::F64(p) if p >= 0.0),
        "{point:?}"
    );
}

#[tokio::test]
async fn a_taken_port_is_refused_and_leaves_no_container() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    let lab = Lab {
        name: unique("port"),
        engine: engine.clone(),
    };
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = ContainerSpec::new(&lab.name, "n1", &postgres_image(&engine), port);
    let name = engine.create_postgres(&spec).await.unwrap();
    let err = engine.start(&name, port).await.unwrap_err();
    assert!(matches!(err, EngineError::PortTaken { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{port} is already taken")),
        "{err}"
    );
    assert!(engine.containers(&lab.name).await.unwrap().is_empty());
}

#[tokio::test]
async fn down_removes_containers_and_network_and_volumes_only_with_purge() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    let lab = Lab {
        name: unique("down"),
        engine: engine.clone(),
    };
    let (container, _, _) = node(&engine, &lab.name, "n1").await;
    assert_eq!(engine.containers(&lab.name).await.unwrap(), [container]);
    assert_eq!(engine.networks(&lab.name).await.unwrap().len(), 1);

    let removed = engine.down(&lab.name, false).await.unwrap();
    assert_eq!(removed.containers.len(), 1);
    assert!(engine.containers(&lab.name).await.unwrap().is_empty());
    assert!(engine.networks(&lab.name).await.unwrap().is_empty());
    assert_eq!(
        engine.volumes(&lab.name).await.unwrap().len(),
        1,
        "the data volume stays"
    );

    engine.down(&lab.name, true).await.unwrap();
    assert!(engine.volumes(&lab.name).await.unwrap().is_empty());
}

#[tokio::test]
async fn capabilities_name_what_is_missing() {
    let Some(engine) = engine_or_skip().await else {
        return;
    };
    let caps = engine.capabilities();
    assert!(!caps.kernel.is_empty());
    let unsupported = caps.unsupported();
    assert_eq!(
        unsupported.len(),
        usize::from(!caps.netem) + usize::from(!caps.ipvs),
        "{unsupported:?}"
    );
}
