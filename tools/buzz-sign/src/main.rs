//! buzz-sign: client-side signing of Nostr events (NIP-01 / NIP-42) for tests,
//! demos and benchmarks, with rust-nostr. The database never sees secret keys; this tool does.
//!
//! Signing is deterministic: BIP-340 with 32 zero bytes of aux randomness, so
//! the same inputs always yield the same event (handy for reproducible fixtures).

use buzz_sign::{keypair, sign_event};
use secp256k1::Secp256k1;
use serde_json::Value;
use std::process::exit;

const USAGE: &str = "\
usage:
  buzz-sign pubkey --sk <64 hex>
  buzz-sign event  --sk <64 hex> --kind <u16> [--content <string> | --content-json <JSON string>]
                   [--tags <JSON array of arrays of strings>] [--created-at <unix secs>]
  buzz-sign auth   --sk <64 hex> --challenge <string> --relay <url> [--created-at <unix secs>]
                   [--kind <u16>] [--extra-tag <JSON array of strings>]... [--no-challenge] [--no-relay]

Prints the x-only pubkey (pubkey) or one signed event as compact JSON (event, auth).
auth builds a NIP-42 kind 22242 event; its extra flags exist to craft malformed test cases.";

/// Parsed `--flag value` pairs plus auth's repeatable / boolean flags.
#[derive(Default)]
struct Opts {
    vals: Vec<(String, String)>,
    extra_tags: Vec<Value>,
    no_challenge: bool,
    no_relay: bool,
}

impl Opts {
    fn get(&self, k: &str) -> Option<&str> {
        self.vals.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str())
    }
    fn req(&self, k: &str) -> Result<&str, String> {
        self.get(k).ok_or_else(|| format!("missing required --{k}"))
    }
}

/// Hand-rolled parser: `allowed` lists the value-taking flags of the subcommand;
/// `auth` enables --extra-tag / --no-challenge / --no-relay.
fn parse(args: &[String], allowed: &[&str], auth: bool) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument '{a}'"))?;
        match flag {
            "no-challenge" if auth => o.no_challenge = true,
            "no-relay" if auth => o.no_relay = true,
            "extra-tag" if auth => {
                let v = it.next().ok_or("--extra-tag needs a value")?;
                o.extra_tags.push(parse_tag(v)?);
            }
            f if allowed.contains(&f) => {
                let v = it.next().ok_or_else(|| format!("--{f} needs a value"))?;
                if o.get(f).is_some() {
                    return Err(format!("--{f} given twice"));
                }
                o.vals.push((f.to_string(), v.clone()));
            }
            _ => return Err(format!("unknown option '{a}'")),
        }
    }
    Ok(o)
}

/// A tag must be a non-empty JSON array of strings (NIP-01).
fn parse_tag(s: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(s).map_err(|e| format!("bad tag JSON: {e}"))?;
    match &v {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => Ok(v),
        _ => Err(format!("tag must be a non-empty JSON array of strings: {s}")),
    }
}

fn parse_tags(s: &str) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_str(s).map_err(|e| format!("bad --tags JSON: {e}"))?;
    let Value::Array(tags) = v else { return Err("--tags must be a JSON array".into()) };
    tags.iter().map(|t| parse_tag(&t.to_string())).collect()
}

fn parse_num<T: std::str::FromStr>(o: &Opts, k: &str) -> Result<Option<T>, String> {
    o.get(k).map(|v| v.parse().map_err(|_| format!("invalid --{k} '{v}'"))).transpose()
}

fn now() -> i64 {
    i64::try_from(nostr::types::Timestamp::now().as_secs()).unwrap_or(i64::MAX)
}

fn run(args: &[String]) -> Result<String, String> {
    let secp = Secp256k1::new();
    let (cmd, rest) = args.split_first().ok_or("missing subcommand")?;
    match cmd.as_str() {
        "pubkey" => {
            let o = parse(rest, &["sk"], false)?;
            let kp = keypair(&secp, o.req("sk")?)?;
            Ok(hex::encode(kp.x_only_public_key().0.serialize()))
        }
        "event" => {
            let o = parse(rest, &["sk", "kind", "content", "content-json", "tags", "created-at"], false)?;
            let kp = keypair(&secp, o.req("sk")?)?;
            let kind: u16 = parse_num(&o, "kind")?.ok_or("missing required --kind")?;
            let tags = o.get("tags").map(parse_tags).transpose()?.unwrap_or_default();
            let created_at: i64 = parse_num(&o, "created-at")?.unwrap_or_else(now);
            if created_at < 0 {
                return Err("--created-at must not be negative".into());
            }
            // --content-json takes a JSON string literal, for content with newlines or control
            // characters that a shell argument cannot carry conveniently.
            let content = match o.get("content-json") {
                Some(j) => serde_json::from_str::<String>(j).map_err(|e| format!("--content-json: {e}"))?,
                None => o.get("content").unwrap_or("").to_owned(),
            };
            Ok(sign_event(&secp, &kp, created_at, kind, &tags, &content))
        }
        "auth" => {
            let o = parse(rest, &["sk", "challenge", "relay", "created-at", "kind"], true)?;
            let kp = keypair(&secp, o.req("sk")?)?;
            let mut tags = Vec::new();
            // --no-X drops the tag, and then the corresponding value is optional.
            if !o.no_relay {
                tags.push(serde_json::json!(["relay", o.req("relay")?]));
            }
            if !o.no_challenge {
                tags.push(serde_json::json!(["challenge", o.req("challenge")?]));
            }
            tags.extend(o.extra_tags.iter().cloned());
            let kind = parse_num(&o, "kind")?.unwrap_or(22242);
            let created_at: i64 = parse_num(&o, "created-at")?.unwrap_or_else(now);
            if created_at < 0 {
                return Err("--created-at must not be negative".into());
            }
            Ok(sign_event(&secp, &kp, created_at, kind, &tags, ""))
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            exit(0)
        }
        _ => Err(format!("unknown subcommand '{cmd}'")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("buzz-sign: {e}\n\n{USAGE}");
            exit(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use buzz_sign::event_id;
    use secp256k1::{schnorr::Signature, XOnlyPublicKey};

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Real event: first line of shared/vectors/nip01-real-events.jsonl (go-nostr testdata).
    #[test]
    fn id_of_known_event() {
        let tags = [
            serde_json::json!(["e", "c56312f922d8984b15b2f005019965df2135a5e299a5a7499f68e7249ca95734", "wss://@nos.lol", "root"]),
            serde_json::json!(["p", "7c765d407d3a9d5ea117cb8b8699628560787fc084a0c76afaa449bfbd121d84"]),
        ];
        let content = "Wow 🤩 I like the way that this dude thinks. Is this the moment that Bitcoin becomes harder currency than gold, I hope so.";
        let pubkey = "3bbcab7e3d2b07a55027206d5e193813f01406882daad05412389a50b67ba92e";
        let id = event_id(pubkey, 1741372929, 1, &tags, content);
        assert_eq!(hex::encode(id), "bc990203855b44130b25686fe70aeae45f4c98fb916f224800b3acba667a8b85");
    }

    /// End to end through the CLI path: parse output, recompute id, verify sig.
    #[test]
    fn signed_event_verifies() {
        let sk = "0000000000000000000000000000000000000000000000000000000000000003";
        let tags = r#"[["t","x/y"],["p","\"q\"\n"]]"#;
        let line = run(&args(&["event", "--sk", sk, "--kind", "1", "--content", "hi \"there\"\n/ü", "--tags", tags, "--created-at", "1700000000"])).unwrap();
        let keys: Vec<&str> = ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"].to_vec();
        let pos: Vec<usize> = keys.iter().map(|k| line.find(&format!("\"{k}\":")).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "key order: {line}");

        let ev: Value = serde_json::from_str(&line).unwrap();
        let pk = ev["pubkey"].as_str().unwrap();
        let id = event_id(pk, 1700000000, 1, ev["tags"].as_array().unwrap(), ev["content"].as_str().unwrap());
        assert_eq!(ev["id"].as_str().unwrap(), hex::encode(id));
        let sig = Signature::from_slice(&hex::decode(ev["sig"].as_str().unwrap()).unwrap()).unwrap();
        let xpk = XOnlyPublicKey::from_slice(&hex::decode(pk).unwrap()).unwrap();
        Secp256k1::verification_only().verify_schnorr(&sig, &id, &xpk).unwrap();
    }

    /// BIP-340 test vector 0: sk=3, aux=0, msg=0. Our zero-aux signing must match exactly.
    #[test]
    fn bip340_vector_0() {
        let secp = Secp256k1::new();
        let kp = keypair(&secp, "0000000000000000000000000000000000000000000000000000000000000003").unwrap();
        assert_eq!(
            hex::encode(kp.x_only_public_key().0.serialize()),
            "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
        );
        let sig = secp.sign_schnorr_with_aux_rand(&[0u8; 32], &kp, &[0u8; 32]);
        assert_eq!(
            hex::encode_upper(sig.to_byte_array()),
            "E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA821525F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0"
        );
    }

    #[test]
    fn auth_tags_and_overrides() {
        let sk = "0000000000000000000000000000000000000000000000000000000000000003";
        let base = ["auth", "--sk", sk, "--challenge", "c1", "--relay", "wss://r", "--created-at", "5"];
        let ev: Value = serde_json::from_str(&run(&args(&base)).unwrap()).unwrap();
        assert_eq!(ev["kind"], 22242);
        assert_eq!(ev["tags"], serde_json::json!([["relay", "wss://r"], ["challenge", "c1"]]));
        assert_eq!(ev["content"], "");

        let mut bad = base.to_vec();
        bad.extend(["--no-relay", "--kind", "1", "--extra-tag", r#"["a","b"]"#]);
        let ev: Value = serde_json::from_str(&run(&args(&bad)).unwrap()).unwrap();
        assert_eq!(ev["kind"], 1);
        assert_eq!(ev["tags"], serde_json::json!([["challenge", "c1"], ["a", "b"]]));
    }

    #[test]
    fn bad_args_rejected() {
        assert!(run(&args(&["event", "--sk", "00"])).is_err());
        assert!(run(&args(&["pubkey", "--bogus", "1"])).is_err());
        assert!(run(&args(&["event", "--sk", &"11".repeat(32)])).is_err()); // no --kind
        assert!(run(&args(&["event", "--sk", &"11".repeat(32), "--kind", "1", "--tags", "[[1]]"])).is_err());
    }
}
