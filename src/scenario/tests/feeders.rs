//! `[[feeder]]`: CSV problems, unused feeders, feeders named by the default headers.

use super::*;

#[test]
fn feeder_problems() {
    let src = |file: &str, mode: &str| {
        format!(
            "name = \"x\"\nbase_url = \"http://h\"\n[[feeder]]\nname = \"f\"\nfile = \"{file}\"\nmode = \"{mode}\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/{{{{f.a}}}}\"\n"
        )
    };
    let dir = Dir::new(&[
        ("ragged.csv", "a,b\n1,2\n3\n"),
        ("empty.csv", ""),
        ("header-only.csv", "a,b\n"),
    ]);
    let e = parse_in(&dir, &src("ragged.csv", "sequential")).unwrap_err();
    assert_eq!(
        e.diagnostics[0].message,
        "feeder file \"ragged.csv\" line 3: 1 fields, but the header has 2; every row needs one value per column"
    );
    assert_eq!((e.diagnostics[0].line, e.diagnostics[0].col), (5, 8));
    assert_eq!(e.diagnostics.len(), 1);

    let e = parse_in(&dir, &src("empty.csv", "sequential")).unwrap_err();
    assert!(
        e.diagnostics[0].message.contains("has no header row"),
        "{e}"
    );

    let e = parse_in(&dir, &src("header-only.csv", "unique")).unwrap_err();
    assert_eq!(
        e.diagnostics[0].message,
        "feeder file \"header-only.csv\" has no data rows, so a unique feeder could never give one; add rows"
    );
    let e = parse_in(&dir, &src("header-only.csv", "random")).unwrap_err();
    assert!(
        e.diagnostics[0]
            .message
            .contains("has a header but no rows"),
        "{e}"
    );

    let e = parse_in(&dir, &src("header-only.csv", "shuffled")).unwrap_err();
    assert!(
        e.diagnostics[1]
            .message
            .starts_with("unknown feeder mode \"shuffled\""),
        "{e}"
    );
    assert_eq!(
        e.diagnostics[0].message,
        "feeder file \"header-only.csv\" has a header but no rows; add data rows"
    );

    // column typo
    let dir = Dir::new(&[("u.csv", "email\nx\n")]);
    let e = parse_in(
        &dir,
        "name = \"x\"\nbase_url = \"http://h\"\n[[feeder]]\nname = \"u\"\nfile = \"u.csv\"\n[[feeder]]\nname = \"u\"\nfile = \"u.csv\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/{{u.emial}}\"\n",
    )
    .unwrap_err();
    let got: Vec<String> = e
        .diagnostics
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "7:8 duplicate feeder name \"u\" (first declared on line 4); give each feeder its own name".to_string(),
            "12:10 feeder \"u\" has no column \"emial\"; its columns are: email (did you mean \"email\"?)".to_string(),
        ]
    );
}

#[test]
fn unused_feeders_are_fine_and_absolute_paths_work() {
    let dir = Dir::new(&[("abs.csv", "a\n")]);
    let abs = dir.dir.path().join("abs.csv");
    let s = parse(&format!(
        "name = \"x\"\nbase_url = \"stack\"\n[[feeder]]\nname = \"f\"\nfile = '{}'\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n",
        abs.display()
    ))
    .unwrap();
    assert_eq!(s.base_url, BaseUrl::Stack);
    assert_eq!(s.feeders[0].path, abs);
    assert!(s.feeders[0].rows.is_empty());
}

#[test]
fn feeders_in_default_headers_are_loaded_by_every_journey() {
    let dir = Dir::new(&[("a.csv", "k\n1\n"), ("b.csv", "k\n1\n")]);
    let s = parse_in(
        &dir,
        "name = \"x\"\nbase_url = \"http://h\"\n[headers]\nX-K = \"{{b.k}}\"\n[[feeder]]\nname = \"a\"\nfile = \"a.csv\"\n[[feeder]]\nname = \"b\"\nfile = \"b.csv\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/{{a.k}}\"\n[[journey]]\nname = \"k\"\n[[journey.step]]\npath = \"/\"\n",
    )
    .unwrap();
    assert_eq!(s.journeys[0].feeders, vec![1, 0]);
    assert_eq!(s.journeys[1].feeders, vec![1]);
    let e = one_error("name = \"x\"\nbase_url = \"http://h\"\n[headers]\nX = \"{{token}}\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n");
    assert!(
        e.starts_with("s.toml:4:6: variable \"token\" can't be used here"),
        "{e}"
    );
}
