//! The parser and validator never panic, whatever they are fed; YAML bombs are refused fast.
//!
//! `DRILL_FUZZ_CASES` sets how many generated inputs run (default 200,000: an input that
//! names a drill carries the shipped drill library, so mutated playbooks reach the planner,
//! which makes each case dearer; about 1% of inputs are planned, and the test fails if fewer
//! than 0.2% are). Inputs are random bytes, token soup, and mutations of the shipped
//! documents (so they reach deep into decoding and validation, not just the YAML scanner). The generator is seeded
//! (`DRILL_FUZZ_SEED`), so a failure names an input that can be replayed.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use drill_spec::Loader;
use drill_tests::{repo, yaml_files};
use proptest::prelude::*;

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ", ",
    "&a ",
    "*a",
    "!!str ",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "? ",
    "|\n",
    ">\n",
    "\t",
    "${X}",
    "${X:-d}",
    "{{ hold }}",
    "apiVersion: drill/v1\n",
    "kind: Playbook\n",
    "kind: Drill\n",
    "traffic",
    "profile",
    "rate: ",
    "ramp_to: ",
    "hold: ",
    "10/s",
    "-5/s",
    "0/s",
    "2m",
    "1h30m",
    "800ms",
    "1%",
    "150%",
    "drills",
    "uses: ",
    "cache-purge",
    "with",
    "faults",
    "action: ",
    "flush",
    "target",
    "redis",
    "docker",
    "name",
    "x",
    "999999999999999999999",
    "-0.0",
    "~",
    "null",
    "true",
    ".inf",
    "<<: *a",
    "\u{feff}",
    "é",
    "\u{0}",
];

fn seeds() -> Vec<String> {
    let mut v: Vec<String> = yaml_files("drills")
        .into_iter()
        .chain(yaml_files("playbooks"))
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    v.extend(
        yaml_files("tests/malformed")
            .into_iter()
            .take(20)
            .filter_map(|f| std::fs::read_to_string(f).ok()),
    );
    v
}

fn generate(rng: &mut Rng, seeds: &[String]) -> Vec<u8> {
    match rng.below(10) {
        // Random bytes.
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        // Token soup.
        1 | 2 => {
            let mut s = String::new();
            for _ in 0..rng.below(60) {
                s.push_str(TOKENS[rng.below(TOKENS.len())]);
            }
            s.into_bytes()
        }
        // Mutations of real documents.
        _ => {
            let mut b = seeds[rng.below(seeds.len())].clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len() + 1);
                match rng.below(5) {
                    0 if !b.is_empty() => {
                        let i = at.min(b.len() - 1);
                        b[i] = rng.next() as u8;
                    }
                    1 => {
                        let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                        b.splice(at..at, t.iter().copied());
                    }
                    2 => {
                        let end = (at + rng.below(40)).min(b.len());
                        b.drain(at..end);
                    }
                    3 => {
                        let end = (at + rng.below(80)).min(b.len());
                        let chunk: Vec<u8> = b[at..end].to_vec();
                        let to = rng.below(b.len() + 1);
                        b.splice(to..to, chunk);
                    }
                    _ => {
                        // Swap a line's indentation.
                        let s = String::from_utf8_lossy(&b).replacen("\n  ", "\n ", 1);
                        b = s.into_bytes();
                    }
                }
            }
            b
        }
    }
}

/// Runs one input through everything `drill validate` and `drill plan` do; returns how many
/// playbooks it planned.
fn exercise(input: &[u8], library: &[String]) -> usize {
    exercise_outcome(input, library).playbooks.len()
}

fn exercise_outcome(input: &[u8], library: &[String]) -> drill_spec::Outcome {
    let text = String::from_utf8_lossy(input);
    let env: BTreeMap<String, String> = BTreeMap::from([("X".into(), "1".into())]);
    let mut loader = Loader::new(&env);
    loader.add("fuzz.yaml", &text, true);
    for (i, d) in library.iter().enumerate() {
        loader.add(&format!("drills/{i}.yaml"), d, false);
    }
    let out = loader.finish();
    for d in &out.diags {
        let _ = out.sources.render(d);
    }
    for pb in &out.playbooks {
        let _ = pb.plan(1.0);
        let _ = pb.plan(0.01);
    }
    out
}

#[test]
fn no_input_makes_the_parser_or_validator_panic() {
    let cases: u64 = std::env::var("DRILL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let seed: u64 = std::env::var("DRILL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_d1ff);
    let seeds = seeds();
    let library: Vec<String> = yaml_files("drills")
        .into_iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut planned = 0u64;
    for n in 0..cases {
        let input = generate(&mut rng, &seeds);
        // An input that names a drill (`uses:`) carries the shipped drill library, so mutated
        // playbooks that still parse get past `uses:` and reach the planner.
        let lib: &[String] = if input.windows(5).any(|w| w == b"uses:") {
            &library
        } else {
            &[]
        };
        match catch_unwind(AssertUnwindSafe(|| exercise(&input, lib))) {
            Ok(p) => planned += p as u64,
            Err(_) => panic!(
                "input #{n} (seed {seed}) panicked:\n{}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    eprintln!(
        "fuzz: {cases} inputs in {:.1}s without a panic; {planned} reached the planner",
        started.elapsed().as_secs_f64()
    );
    // The harness itself: if mutations stopped reaching the planner, they would test less.
    assert!(
        planned * 500 >= cases,
        "only {planned} of {cases} inputs were planned: the seeds or the library are broken"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_in_any_field_are_errors_not_panics(value in any::<String>(), field in 0usize..6) {
        let keys = ["rate", "hold", "ramp_to", "over", "error_rate", "p95"];
        let yaml = format!(
            "apiVersion: drill/v1\nkind: Playbook\nmetadata: {{name: p}}\ntarget: {{base_url: 'http://127.0.0.1', allow: {{http: [127.0.0.1]}}}}\ntraffic:\n  requests: [{{name: a, path: /}}]\n  profile:\n    - {{rate: 1/s, hold: 1m}}\n    - {{{}: {}}}\n",
            keys[field],
            serde_json::to_string(&value).unwrap_or_default()
        );
        let out = exercise_outcome(yaml.as_bytes(), &[]);
        // A stage of `ramp_to` without `over`, `over` or `hold` alone, or a key that is no
        // stage's is always an error; `rate` or `hold` alone is a stage when the string is a
        // rate or a duration.
        let valid_alone = match keys[field] {
            "rate" => value.trim().parse::<drill_spec::units::Rate>().is_ok(),
            "hold" => value.trim().parse::<drill_spec::units::Dur>().is_ok(),
            _ => false,
        };
        prop_assert!(
            out.has_errors() || valid_alone,
            "{}: {:?} was accepted", keys[field], value
        );
        // Bad input runs nothing: an error leaves no playbook to plan.
        prop_assert!(!out.has_errors() || out.playbooks.is_empty());
    }
}

fn refused_quickly(name: &str, text: &str, needle: &str) {
    let env: BTreeMap<String, String> = BTreeMap::new();
    let started = Instant::now();
    let mut loader = Loader::new(&env);
    loader.add(name, text, true);
    let out = loader.finish();
    let took = started.elapsed();
    let first = out
        .diags
        .first()
        .map(|d| out.sources.render(d))
        .unwrap_or_default();
    eprintln!(
        "{name}: refused in {:.1} ms: {first}",
        took.as_secs_f64() * 1000.0
    );
    assert!(
        out.has_errors() && out.playbooks.is_empty(),
        "{name} was accepted"
    );
    assert!(first.contains(needle), "{name}: {first}");
    // A hang guard, not a benchmark: the real figure is printed above.
    assert!(took < Duration::from_secs(5), "{name} took {took:?}");
}

#[test]
fn a_billion_laughs_is_refused_quickly() {
    let mut y = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        y.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    refused_quickly("laughs.yaml", &y, "invalid YAML");
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused_quickly() {
    let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    refused_quickly("deep-flow.yaml", &flow, "invalid YAML");
    let maps = format!("{}x{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    refused_quickly("deep-maps.yaml", &maps, "invalid YAML");
    // Block sequences nest on one line: `- - - x`.
    let block = format!("{}x\n", "- ".repeat(10_000));
    refused_quickly("deep-block.yaml", &block, "invalid YAML");
}

#[test]
fn a_fifty_megabyte_scalar_is_refused_quickly() {
    let big = format!(
        "apiVersion: drill/v1\nkind: Playbook\nmetadata: {{name: \"{}\"}}\n",
        "x".repeat(50 * 1024 * 1024)
    );
    refused_quickly("big.yaml", &big, "more than the 4 MiB drill reads");
}

#[test]
fn shipped_documents_still_parse_in_the_fuzz_harness() {
    // Guards the harness itself: if the seeds stopped being valid, mutations would test less.
    let env: BTreeMap<String, String> = BTreeMap::new();
    let mut loader = Loader::new(&env);
    for f in yaml_files("drills")
        .into_iter()
        .chain(yaml_files("playbooks"))
    {
        let text = std::fs::read_to_string(&f).expect("readable");
        loader.add(
            &f.strip_prefix(repo()).unwrap_or(&f).display().to_string(),
            &text,
            true,
        );
    }
    let out = loader.finish();
    assert!(!out.has_errors(), "{:?}", out.diags);
    // A corpus check that reads nothing proves nothing.
    assert!(
        yaml_files("drills").len() >= 3 && out.playbooks.len() >= 3,
        "the shipped drills and playbooks were not found"
    );
}
