//! Property test: correctly signed but mutated Meta webhook POSTs never panic the receiver, never
//! get a 5xx, and every event of a POST answered 200 is either applied (journal, inbound mirror,
//! outbox) or dead-lettered in `webhook_rejects` with a reason — while the outbox keeps draining
//! against the Salesforce simulator (no value reaches it that makes Salesforce refuse a whole call).
//!
//! Each case starts from Meta's documented shapes (inbound text, media, reaction, button,
//! interactive, location, contacts, system; statuses sent / delivered / read / failed with errors;
//! system errors), for messages the daemon really sent, then applies a few mutations anywhere in
//! the envelope: keys removed, types swapped, timestamps at chrono's limits / in milliseconds /
//! negative / huge, huge strings, deep nesting, lone surrogate escapes, odd unicode, over-long
//! ids, foreign callbacks, duplicated items. Every body is signed with the app secret and goes
//! (a) through `webhook::parse_received` + `pipeline::webhook_apply::apply` directly on one
//! daemon, and (b) over loopback HTTP to another daemon's real endpoint.
//!
//! `SFWA_FUZZ_CASES` sets the number of cases (default 64, a few seconds in CI); e.g.
//! `SFWA_FUZZ_CASES=3000 cargo test --test api webhook_fuzz -- --nocapture`.

use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};
use sfwa::domain::message::salesforce_length;
use sfwa::domain::webhook_event::{RejectReason, WebhookEvent, ECHO_CHARS};
use sfwa::pipeline::webhook_apply;
use sfwa::store::{dedupe, journal, outbox, webhook_rejects};
use sfwa::webhook;
use sfwa_sim::whatsapp::signature;

use crate::daemon_support::{spawn_app, TestApp};

/// What one case is made of: numbers the build below turns into a body, deterministically.
#[derive(Clone, Debug)]
struct Case {
    /// Per `value`: (statuses picks, messages picks), each pick choosing a template.
    values: Vec<(Vec<u8>, Vec<u8>)>,
    /// (node pick, operation, argument).
    mutations: Vec<(u64, u8, u64)>,
    /// Makes this case's inbound wamids new (so they apply rather than count as duplicates).
    nonce: u64,
}

fn case() -> impl Strategy<Value = Case> {
    let picks = || proptest::collection::vec(any::<u8>(), 0..4);
    (
        proptest::collection::vec((picks(), picks()), 1..3),
        proptest::collection::vec((any::<u64>(), any::<u8>(), any::<u64>()), 0..6),
        any::<u64>(),
    )
        .prop_map(|(values, mutations, nonce)| Case {
            values,
            mutations,
            nonce,
        })
}

/// What a daemon knows: the messages it really sent (record Id, wamid), its number, the time.
struct Known {
    sent: Vec<(String, String)>,
    phone_number_id: String,
    now: i64,
}

const CUSTOMER: &str = "16505551234";

/// A status of a message the daemon sent; for odd picks under a wamid it never saw (so the
/// status is new every case and is written back through the `biz_opaque_callback_data` echo
/// rather than counted as a duplicate).
fn status_item(known: &Known, nonce: u64, pick: u8, n: usize) -> Value {
    let (record_id, sent_wamid) = &known.sent[usize::from(pick) % known.sent.len()];
    let wamid = if pick % 2 == 1 {
        format!("wamid.FUZZSTATUS{nonce:x}.{n}")
    } else {
        sent_wamid.clone()
    };
    let status = ["sent", "delivered", "read", "failed"][usize::from(pick / 7) % 4];
    let mut item = json!({"id": wamid, "status": status, "timestamp": known.now.to_string(),
        "recipient_id": CUSTOMER, "biz_opaque_callback_data": record_id,
        "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "utility"}},
        "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"}});
    if status == "failed" {
        let code = [131047, 131026, 130472, 131000][usize::from(pick) % 4];
        item["errors"] = json!([{"code": code,
            "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed."}}]);
    }
    item
}

fn message_item(known: &Known, nonce: u64, pick: u8, n: usize) -> Value {
    let wamid = format!("wamid.FUZZ{nonce:x}.{pick}.{n}");
    let (kind, object) = match pick % 14 {
        0 => ("text", json!({"body": "Does it come in another color?"})),
        1 => (
            "image",
            json!({"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "x", "caption": "receipt"}),
        ),
        2 => (
            "document",
            json!({"id": "2", "mime_type": "application/pdf", "filename": "quote.pdf"}),
        ),
        3 => (
            "audio",
            json!({"id": "3", "mime_type": "audio/ogg; codecs=opus", "voice": true}),
        ),
        4 => ("video", json!({"id": "4", "mime_type": "video/mp4"})),
        5 => (
            "sticker",
            json!({"id": "5", "mime_type": "image/webp", "animated": false}),
        ),
        6 => (
            "reaction",
            json!({"message_id": known.sent[0].1, "emoji": "👍"}),
        ),
        7 => ("reaction", json!({"message_id": known.sent[0].1})),
        8 => ("button", json!({"payload": "CONFIRM", "text": "Yes"})),
        9 => (
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "b1", "title": "Tuesday"}}),
        ),
        10 => (
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": "l2", "title": "10:00", "description": "d"}}),
        ),
        11 => (
            "location",
            json!({"latitude": 52.52, "longitude": 13.405, "name": "Office", "address": "Main St"}),
        ),
        12 => (
            "contacts",
            json!([{"name": {"formatted_name": "Ana"}, "phones": [{"phone": "+1 650 555 0101"}]}]),
        ),
        _ => ("unsupported", json!({})),
    };
    let mut item =
        json!({"from": CUSTOMER, "id": wamid, "timestamp": known.now.to_string(), "type": kind});
    item[kind] = object;
    if pick.is_multiple_of(3) {
        item["context"] = json!({"from": "15550000000", "id": known.sent[0].1});
    }
    item
}

fn body_value(known: &Known, case: &Case) -> Value {
    let changes: Vec<Value> = case
        .values
        .iter()
        .enumerate()
        .map(|(v, (statuses, messages))| {
            let mut value = json!({"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550000000", "phone_number_id": known.phone_number_id},
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": CUSTOMER}]});
            if !statuses.is_empty() {
                value["statuses"] = statuses
                    .iter()
                    .enumerate()
                    .map(|(i, p)| status_item(known, case.nonce, *p, v * 10 + i))
                    .collect();
            }
            if !messages.is_empty() {
                value["messages"] = messages
                    .iter()
                    .enumerate()
                    .map(|(i, p)| message_item(known, case.nonce, *p, v * 10 + i))
                    .collect();
            }
            if v == 1 {
                value["errors"] = json!([{"code": 131000, "title": "Something went wrong"}]);
            }
            json!({"field": "messages", "value": value})
        })
        .collect();
    json!({"object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": changes}]})
}

/// One step of a path into a JSON tree.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Index(i) => node.get_mut(*i),
    })
}

/// Markers replaced in the serialised body by escapes serde_json never writes.
const ESCAPES: [(&str, &str); 5] = [
    ("@@HIGH@@", "\\ud83d"),
    ("@@LOW@@", "\\udc00"),
    ("@@ESCAPED@@", "\\\\ud83d"),
    ("@@PAIR@@", "\\ud83d\\ude00"),
    ("@@TWOHIGH@@", "\\ud83d\\ud83d\\ude00"),
];

fn interesting_timestamp(known: &Known, arg: u64) -> Value {
    let max = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    let min = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    let choices = [
        json!(max.timestamp().to_string()),
        json!(min.timestamp().to_string()),
        json!(max.timestamp_millis().to_string()),
        json!((known.now * 1000).to_string()),
        json!(known.now * 1000 + 999),
        json!("-1"),
        json!(-62_135_596_800_i64),
        json!(i64::MAX.to_string()),
        json!(i64::MIN),
        json!(u64::MAX),
        json!("99999999999"),
        json!("100000000000"),
        json!(1e300),
        json!(" 1749416383 "),
        json!("1749416383.5"),
        json!("yesterday"),
        json!((known.now + 90_000).to_string()),
        json!("32503680000"),
    ];
    choices[(arg % choices.len() as u64) as usize].clone()
}

fn odd_string(arg: u64) -> String {
    let (marker, _) = ESCAPES[(arg % ESCAPES.len() as u64) as usize];
    match (arg / 7) % 10 {
        0 => format!("half an emoji {marker}"),
        1 => marker.to_string(),
        2 => "😀👍🏽 مرحبا \u{202e}rtl".to_string(),
        3 => "nul \0 and \u{1} controls".to_string(),
        4 => "e\u{301}\u{fe0f}\u{200d}".repeat(50),
        5 => "𝕏".repeat(3000),
        6 => "x".repeat(70_000),
        7 => "é".repeat(5000),
        8 => "w".repeat(129),
        _ => String::new(),
    }
}

fn mutate(known: &Known, body: &mut Value, (pick, op, arg): (u64, u8, u64)) {
    let mut all = Vec::new();
    paths(body, &mut Vec::new(), &mut all);
    // Timestamps are aimed at the items (a status or message) most of the time: a random node
    // is rarely one, and an item's timestamp is what reaches Salesforce.
    let items: Vec<&Vec<Step>> = all
        .iter()
        .filter(|p| match p.as_slice() {
            [.., Step::Key(list), Step::Index(_)] => list == "statuses" || list == "messages",
            _ => false,
        })
        .collect();
    let path = match (op % 12, items.is_empty()) {
        (2 | 11, false) => items[(pick % items.len() as u64) as usize].clone(),
        _ => all[(pick % all.len() as u64) as usize].clone(),
    };
    let Some(node) = at_path(body, &path) else {
        return;
    };
    match op % 12 {
        0 => match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth((arg % map.len() as u64) as usize).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                items.remove((arg % items.len() as u64) as usize);
            }
            _ => *node = Value::Null,
        },
        1 => {
            let swapped = [
                Value::Null,
                json!(true),
                json!(0),
                json!(-1),
                json!(1.5),
                json!(i64::MAX),
                json!(u64::MAX),
                json!(""),
                json!("text"),
                json!([]),
                json!({}),
                json!([node.clone()]),
                json!({"wrapped": node.clone()}),
            ];
            *node = swapped[(arg % swapped.len() as u64) as usize].clone();
        }
        2 | 11 => {
            let stamp = interesting_timestamp(known, arg);
            match node {
                Value::Object(map) => {
                    map.insert("timestamp".into(), stamp);
                }
                other => *other = stamp,
            }
        }
        3 => {
            let length = [300, 5000, 70_000][(arg % 3) as usize];
            let unit = ["a", "é", "😀"][((arg / 3) % 3) as usize];
            *node = json!(unit.repeat(length));
        }
        4 => {
            let depth = [3, 40, 100, 127, 200][(arg % 5) as usize];
            for level in 0..depth {
                let inner = node.take();
                *node = if level % 2 == 0 {
                    json!([inner])
                } else {
                    json!({"n": inner})
                };
            }
        }
        5..=7 => *node = json!(odd_string(arg)),
        8 => {
            let ids = [
                json!("a005g0000012345AAB"),
                json!("003000000000001AAA"),
                json!("not an id"),
                json!(known.sent[0].0.to_lowercase()),
                json!(&known.sent[0].0[..15]),
                json!(42),
            ];
            let id = ids[(arg % ids.len() as u64) as usize].clone();
            match node {
                Value::Object(map) => {
                    map.insert("biz_opaque_callback_data".into(), id);
                }
                other => *other = id,
            }
        }
        9 => {
            if let Value::Array(items) = node {
                if let Some(first) = items.first().cloned() {
                    items.push(first);
                }
            } else {
                *node = json!([node.clone(), node.clone()]);
            }
        }
        _ => {
            let swapped = match &*node {
                Value::String(s) => s.parse::<i64>().map_or(json!(s.len()), |n| json!(n)),
                Value::Number(n) => json!(n.to_string()),
                other => json!(other.to_string()),
            };
            *node = swapped;
        }
    }
}

/// The signed bytes of one case for a daemon.
fn build(known: &Known, case: &Case) -> Vec<u8> {
    let mut body = body_value(known, case);
    for mutation in &case.mutations {
        mutate(known, &mut body, *mutation);
    }
    let mut text = serde_json::to_string(&body).expect("serialisable");
    for (marker, escape) in ESCAPES {
        text = text.replace(marker, escape);
    }
    text.into_bytes()
}

/// The statuses and messages a POST carries, counted without sfwa's parser: every item of a
/// `statuses` / `messages` list (a present non-list counts as one), and a `messages` change whose
/// value is not an object as one.
fn events_in(body: &[u8]) -> Option<usize> {
    let repaired = webhook::repair_body(body);
    let envelope: Value = serde_json::from_slice(&repaired).ok()?;
    let mut count = 0;
    for entry in envelope.get("entry")?.as_array()? {
        for change in entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if change.get("field").and_then(Value::as_str) != Some("messages") {
                continue;
            }
            match change.get("value") {
                None => {}
                Some(Value::Object(value)) => {
                    for key in ["statuses", "messages"] {
                        count += match value.get(key) {
                            None | Some(Value::Null) => 0,
                            Some(Value::Array(items)) => items.len(),
                            Some(_) => 1,
                        };
                    }
                }
                Some(_) => count += 1,
            }
        }
    }
    Some(count)
}

/// A daemon with a few messages really sent (so statuses find journal entries and records).
async fn daemon_with_sent_messages() -> (TestApp, Known) {
    let app = spawn_app().await;
    let queued = app
        .queue(json!([
            {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"},
            {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"},
            {"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}
        ]))
        .await;
    app.dispatch().await;
    let mut sent = Vec::new();
    for id in queued {
        let wamid = app.journal(&id).await.and_then(|e| e.wamid).expect("sent");
        sent.push((id, wamid));
    }
    let known = Known {
        sent,
        phone_number_id: app.wa.phone_number_id().to_string(),
        now: app.clock.now().timestamp(),
    };
    (app, known)
}

async fn rejects_seen(app: &TestApp) -> u64 {
    app.pipeline
        .core
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT coalesce(sum(times_seen), 0) FROM webhook_rejects",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap() as u64
}

/// Flushes until the outbox is empty, moving the clock past any back-off; the depth left.
async fn drain(app: &TestApp) -> u64 {
    for _ in 0..20 {
        app.flush().await;
        let depth = app.pipeline.core.store.read(outbox::depth).await.unwrap();
        if depth == 0 {
            return 0;
        }
        app.clock.shift(chrono::Duration::minutes(30));
    }
    app.pipeline.core.store.read(outbox::depth).await.unwrap()
}

/// Field lengths of `WhatsApp_Message__c` as Salesforce counts them (UTF-16 units; DESIGN.md).
const TEXT_FIELDS: [(&str, usize); 6] = [
    ("Body__c", 4096),
    ("Error_Message__c", 1024),
    ("Error_Code__c", 32),
    ("WhatsApp_Message_Id__c", 128),
    ("Business_Number_Id__c", 32),
    ("Media_Filename__c", 255),
];

/// What real Salesforce would refuse in the records the simulator holds (the simulator is more
/// lenient about years and counts characters, not UTF-16 units): datetimes outside 1700-4000,
/// text longer than its field.
fn salesforce_would_refuse(app: &TestApp, only: Option<&[(String, String)]>) -> Vec<String> {
    let mut problems = Vec::new();
    let state = app.org.state();
    let org = state.org();
    let records: Vec<&sfwa_sim::salesforce::org::Record> = match only {
        Some(sent) => sent
            .iter()
            .filter_map(|(id, _)| org.get(crate::daemon_support::MSG, id).ok())
            .collect(),
        None => org.rows(crate::daemon_support::MSG).collect(),
    };
    for record in records {
        for (field, value) in record {
            let Some(text) = value.as_str() else {
                continue;
            };
            if field.ends_with("_At__c") {
                let ok = sfwa::domain::message::parse_salesforce_datetime(text)
                    .is_some_and(sfwa::domain::message::is_salesforce_datetime);
                if !ok {
                    problems.push(format!("{field} = {text}"));
                }
            }
            if let Some((_, max)) = TEXT_FIELDS.iter().find(|(name, _)| name == field) {
                if salesforce_length(text) > *max {
                    problems.push(format!("{field} is {} long", text.len()));
                }
            }
        }
    }
    problems
}

#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    answers: BTreeMap<u16, u64>,
    applied: u64,
    rejected: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.cases += other.cases;
        self.applied += other.applied;
        for (status, n) in other.answers {
            *self.answers.entry(status).or_default() += n;
        }
        for (reason, n) in other.rejected {
            *self.rejected.entry(reason).or_default() += n;
        }
    }
}

/// (a): the parser and the apply step, directly.
async fn direct(app: &TestApp, body: &[u8], tally: &mut Tally) -> Result<(), TestCaseError> {
    let expected = events_in(body);
    let parsed = match webhook::parse_received(body, app.pipeline.core.now()) {
        Ok(parsed) => parsed,
        Err(error) => {
            prop_assert!(error.to_string().chars().count() <= 2 * ECHO_CHARS);
            return Ok(());
        }
    };
    let applied = webhook_apply::apply(&app.pipeline.core, parsed)
        .await
        .map_err(|e| TestCaseError::fail(format!("apply failed: {e}")))?;
    for rejected in &applied.rejected {
        prop_assert_ne!(
            rejected.reason,
            RejectReason::Internal,
            "{}",
            rejected.detail
        );
        prop_assert!(rejected.detail.chars().count() < 1000);
        *tally.rejected.entry(rejected.reason.label()).or_default() += 1;
    }
    let accounted =
        applied.statuses + applied.inbound + applied.duplicates + applied.rejected.len();
    tally.applied += (applied.statuses + applied.inbound) as u64;
    prop_assert_eq!(Some(accounted), expected, "{:?}", applied);
    Ok(())
}

/// (b): the real endpoint over loopback.
async fn over_http(app: &TestApp, body: Vec<u8>, tally: &mut Tally) -> Result<(), TestCaseError> {
    let parsed = webhook::parse_received(&body, app.pipeline.core.now());
    let rejects_before = rejects_seen(app).await;
    let sig = signature(&body, app.wa.app_secret());
    let response = app
        .http
        .post(app.wa.webhook_url().expect("registered"))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
    let status = response.status().as_u16();
    *tally.answers.entry(status).or_default() += 1;
    let text = response.text().await.unwrap_or_default();
    prop_assert!(status < 500, "{status}: {text}");
    prop_assert!(text.len() <= 4 * ECHO_CHARS + 100, "{} bytes", text.len());
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(_) => {
            prop_assert_eq!(status, 400);
            return Ok(());
        }
    };
    prop_assert_eq!(status, 200, "{}", text);
    let rejected = parsed.rejected.len() as u64;
    // Exact while no row was evicted by the table's cap (far above what a run stores).
    prop_assert_eq!(rejects_seen(app).await - rejects_before, rejected);
    let events = parsed.events;
    let unseen = app
        .pipeline
        .core
        .store
        .read(move |c| {
            let mut unseen = Vec::new();
            for event in events {
                let seen = match &event {
                    WebhookEvent::Status(s) => journal::status_seen(c, &s.wamid, s.status)?,
                    _ => dedupe::seen(c, &event.dedupe_key())?,
                };
                if !seen {
                    unseen.push(event.dedupe_key());
                }
            }
            Ok(unseen)
        })
        .await
        .unwrap();
    prop_assert!(
        unseen.is_empty(),
        "acknowledged but not applied: {:?}",
        unseen
    );
    Ok(())
}

#[test]
fn signed_mutated_meta_payloads_never_panic_never_5xx_and_every_event_is_applied_or_dead_lettered()
{
    let cases: u32 = std::env::var("SFWA_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (direct_app, direct_known) = runtime.block_on(daemon_with_sent_messages());
    let (http_app, http_known) = runtime.block_on(daemon_with_sent_messages());
    let started = Instant::now();
    let tally = std::cell::RefCell::new(Tally::default());
    let config = Config {
        cases,
        failure_persistence: None,
        // The daemons' state carries over from case to case, so a shrunk case would not show
        // what failed: report the failing case itself.
        max_shrink_iters: 0,
        ..Config::default()
    };
    let seed = std::env::var("SFWA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(10);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );

    let result = runner.run(&case(), |case| {
        let mut this = Tally {
            cases: 1,
            ..Tally::default()
        };
        let outcome = runtime.block_on(async {
            direct(&direct_app, &build(&direct_known, &case), &mut this).await?;
            over_http(&http_app, build(&http_known, &case), &mut this).await?;
            // Flushed every case: the outbox coalesces per record, so a bad value written to one
            // of the sent records would otherwise be overwritten by a later good one unseen.
            for (app, known) in [(&direct_app, &direct_known), (&http_app, &http_known)] {
                app.flush().await;
                let refused = salesforce_would_refuse(app, Some(&known.sent));
                prop_assert!(
                    refused.is_empty(),
                    "refused by real Salesforce: {:?}",
                    refused
                );
            }
            Ok(())
        });
        tally.borrow_mut().add(this);
        outcome
    });
    let left = runtime.block_on(async { (drain(&direct_app).await, drain(&http_app).await) });
    let dead: Vec<String> = runtime.block_on(async {
        let mut reasons = Vec::new();
        for app in [&direct_app, &http_app] {
            let letters = app
                .pipeline
                .core
                .store
                .read(|c| outbox::dead_letters(c, 1000))
                .await
                .unwrap();
            reasons.extend(letters.into_iter().map(|d| d.reason));
        }
        reasons
    });
    let refused_by_salesforce: Vec<String> = [&direct_app, &http_app]
        .iter()
        .flat_map(|app| salesforce_would_refuse(app, None))
        .collect();
    let stored = runtime.block_on(async {
        http_app
            .pipeline
            .core
            .store
            .read(webhook_rejects::counts_by_reason)
            .await
            .unwrap()
    });

    let tally = tally.into_inner();
    println!(
        "webhook fuzz: {} cases (seed {seed}) in {:.1} s; answers {:?}; events applied {}, refused {:?}; dead letters kept {:?}; write-back dead letters {}: {:?}",
        tally.cases,
        started.elapsed().as_secs_f64(),
        tally.answers,
        tally.applied,
        tally.rejected,
        stored,
        dead.len(),
        dead.iter().take(5).collect::<Vec<_>>(),
    );
    result.expect("every case holds");
    assert_eq!(left, (0, 0), "write-backs stuck in the outbox");
    assert!(
        refused_by_salesforce.is_empty(),
        "written from webhooks, refused by real Salesforce: {:?}",
        &refused_by_salesforce[..refused_by_salesforce.len().min(5)]
    );
    assert!(
        dead.is_empty(),
        "a value from a webhook that Salesforce refuses reached the outbox: {dead:?}"
    );
    assert!(tally.applied > 0 && !tally.rejected.is_empty(), "{tally:?}");
}
