//! `[load]`: models, shorthands and stages.

use std::time::Duration;

use super::*;

fn load_of(load: &str) -> Result<Load, Vec<String>> {
    let src = format!(
        "name = \"x\"\nbase_url = \"http://h\"\n[load]\n{load}\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n"
    );
    match parse(&src) {
        Ok(s) => Ok(s.load),
        Err(e) => Err(e.diagnostics.iter().map(|d| d.to_string()).collect()),
    }
}

#[test]
fn load_shorthands_and_models() {
    // No [load]: one stage, 10 s at 1 rps.
    let s = parse("name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n").unwrap();
    let Load::Open(o) = s.load else { panic!() };
    assert_eq!(
        (o.start_rps, o.max_vus, o.pre_allocated_vus),
        (0.0, 1000, 1)
    );
    assert_eq!(o.max_lag, Duration::from_secs(5));
    assert_eq!(
        o.stages,
        vec![RateStage {
            duration: Duration::from_secs(10),
            target_rps: 1.0,
            name: None
        }]
    );

    let Load::Open(o) = load_of("rps = 100\nduration = \"30s\"").unwrap() else {
        panic!()
    };
    assert_eq!(o.start_rps, 100.0);
    assert_eq!(
        o.stages,
        vec![RateStage {
            duration: Duration::from_secs(30),
            target_rps: 100.0,
            name: None
        }]
    );
    assert_eq!(o.pre_allocated_vus, 100);

    let Load::Open(o) = load_of("rps = 100\nduration = \"30s\"\nmax_vus = 20").unwrap() else {
        panic!()
    };
    assert_eq!(o.pre_allocated_vus, 20);

    let Load::Closed(c) = load_of("vus = 10\nduration = \"1m\"").unwrap() else {
        panic!()
    };
    assert_eq!(c.start_vus, 10);
    assert_eq!(
        c.stages,
        vec![VuStage {
            duration: Duration::from_secs(60),
            target_vus: 10,
            name: None
        }]
    );

    let Load::Closed(c) = load_of("model = \"closed\"\nstart_vus = 2\nstages = [{ duration = \"10s\", target_vus = 20, name = \"up\" }]").unwrap() else { panic!() };
    assert_eq!(c.start_vus, 2);
    assert_eq!(
        c.stages,
        vec![VuStage {
            duration: Duration::from_secs(10),
            target_vus: 20,
            name: Some("up".into())
        }]
    );

    let Load::Open(o) =
        load_of("stages = [{ duration = \"1s\", target_rps = 0.4 }]\npre_allocated_vus = 3")
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(o.pre_allocated_vus, 3);
    assert_eq!(o.arrivals, ArrivalProcess::Even);

    let Load::Open(o) = load_of("rps = 5\nduration = \"1s\"\narrivals = \"poisson\"").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        o.arrivals,
        ArrivalProcess::Poisson {
            seed: DEFAULT_ARRIVAL_SEED
        }
    );
    let Load::Open(o) =
        load_of("rps = 5\nduration = \"1s\"\narrivals = \"poisson\"\nseed = 42").unwrap()
    else {
        panic!()
    };
    assert_eq!(o.arrivals, ArrivalProcess::Poisson { seed: 42 });
}

#[test]
fn load_errors() {
    let cases: &[(&str, &str)] = &[
        ("stages = [{ duration = \"10s\", target_vus = 5 }]",
         "s.toml:4:31: \"target_vus\" is for the closed model; set model = \"closed\" in [load] to run virtual users, or use target_rps for an arrival rate"),
        ("model = \"closed\"\nstages = [{ duration = \"10s\", target_rps = 5 }]",
         "s.toml:5:31: \"target_rps\" is for the open model, but this [load] has model = \"closed\"; use target_vus, or set model = \"open\" for an arrival rate"),
        ("model = \"closed\"\nmax_vus = 3\nvus = 1\nduration = \"1s\"",
         "s.toml:5:1: \"max_vus\" belongs to the open model, but this [load] uses the closed model; remove it or set model = \"open\""),
        ("start_vus = 3\nrps = 1\nduration = \"1s\"",
         "s.toml:4:1: \"start_vus\" belongs to the closed model, but this [load] uses the open model; set model = \"closed\" in [load] to use virtual users"),
        ("model = \"half-open\"\nrps = 1\nduration = \"1s\"",
         "s.toml:4:9: unknown load model \"half-open\"; expected \"open\" (arrival rate) or \"closed\" (virtual users)"),
        ("rps = 10", "s.toml:4:1: \"rps\" needs \"duration\" beside it (e.g. rps = 10, duration = \"30s\"), or use stages"),
        ("max_vus = 10", "s.toml:3:1: [load] needs stages, e.g. stages = [{ duration = \"30s\", target_rps = 10 }], or the shorthand rps = 10, duration = \"30s\""),
        ("rps = 1\nduration = \"1s\"\nstages = [{ duration = \"1s\", target_rps = 1 }]",
         "s.toml:4:1: use either the shorthand \"rps = ..., duration = ...\" or \"stages\", not both"),
        ("stages = []", "s.toml:4:10: \"stages\" is empty; add at least one stage"),
        ("rps = 1\nduration = \"1s\"\narrivals = \"poison\"",
         "s.toml:6:12: unknown arrivals \"poison\"; expected \"even\" (evenly spaced, the default) or \"poisson\" (independent arrivals at the planned rate) (did you mean \"poisson\"?)"),
        ("rps = 1\nduration = \"1s\"\nseed = 4",
         "s.toml:6:1: \"seed\" only shapes arrivals = \"poisson\"; add arrivals = \"poisson\" or remove the seed"),
        ("rps = 1\nduration = \"1s\"\narrivals = \"poisson\"\nseed = -4",
         "s.toml:7:8: \"seed\" must be an integer ≥ 0, found -4"),
        ("vus = 1\nduration = \"1s\"\narrivals = \"poisson\"",
         "s.toml:6:1: \"arrivals\" belongs to the open model, but this [load] uses the closed model; remove it or set model = \"open\""),
        ("stages = [{ duration = \"0s\", target_rps = 1 }]", "s.toml:4:24: \"duration\" must be longer than zero, found \"0s\""),
        ("stages = [{ duration = \"1s\", target_rps = -1 }]", "s.toml:4:43: \"target_rps\" must be a number ≥ 0, found -1"),
        ("stages = [{ duration = \"1s\", target_rps = 1 }]\nmax_vus = 0", "s.toml:5:11: \"max_vus\" must be an integer from 1 to 100000, found 0"),
        ("stages = [{ duration = \"1s\", target_rps = 1 }]\nmax_vus = 2\npre_allocated_vus = 3", "s.toml:6:21: pre_allocated_vus (3) is above max_vus (2); lower it or raise max_vus"),
        ("stages = [{ target_rps = 1 }]", "s.toml:4:11: this stage has no \"duration\"; add e.g. duration = \"30s\""),
        ("rps = 1\nduration = \"1s\"\nstart_rps = 2", "s.toml:6:1: with the shorthand rps = N, start_rps is N already; remove start_rps"),
    ];
    for (load, want) in cases {
        assert_eq!(
            load_of(load).unwrap_err(),
            vec![want.to_string()],
            "for {load}"
        );
    }
}
