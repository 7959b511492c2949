//! End-to-end behaviour of the SOQL subset: text in, rows or Salesforce's exact error out.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::*;
use crate::salesforce::ids;
use crate::salesforce::schema::Schema;

type Row = Map<String, Value>;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::embedded().unwrap())
}

/// A schema with the field types the package itself does not use yet (date, number), read from a
/// throwaway SFDX folder.
fn schema_with_dates_and_numbers() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("sfwa-soql-{}", std::process::id()));
        let object = root.join("Visit__c");
        std::fs::create_dir_all(object.join("fields")).unwrap();
        std::fs::write(
            object.join("Visit__c.object-meta.xml"),
            r#"<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata"><label>Visit</label></CustomObject>"#,
        )
        .unwrap();
        for (name, kind) in [("Day__c", "Date"), ("Amount__c", "Number")] {
            std::fs::write(
                object.join("fields").join(format!("{name}.field-meta.xml")),
                format!(
                    r#"<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>{name}</fullName><type>{kind}</type></CustomField>"#
                ),
            )
            .unwrap();
        }
        let schema = Schema::from_dir(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        schema
    })
}

fn row(value: Value) -> Row {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn run_on(schema: &Schema, soql: &str, rows: &[Row]) -> Vec<Row> {
    parse(soql).unwrap().bind(schema).unwrap().run(rows.iter())
}

fn run(soql: &str, rows: &[Row]) -> Vec<Row> {
    run_on(schema(), soql, rows)
}

fn error_on(schema: &Schema, soql: &str) -> SoqlError {
    match parse(soql) {
        Err(error) => error,
        Ok(query) => query.bind(schema).unwrap_err(),
    }
}

fn error(soql: &str) -> SoqlError {
    error_on(schema(), soql)
}

/// The `Name` of each result, in order.
fn names(rows: &[Row]) -> Vec<&str> {
    rows.iter()
        .map(|row| row["Name"].as_str().unwrap_or("<null>"))
        .collect()
}

fn messages() -> Vec<Row> {
    vec![
        row(
            json!({"Id": "a00000000000001AAA", "Name": "WAM-1", "Status__c": "Queued",
            "To_Phone__c": "+447700900001", "Scheduled_At__c": "2026-11-24T15:00:00.000+0000",
            "Template_Name__c": "order_ready"}),
        ),
        row(
            json!({"Id": "a00000000000002AAA", "Name": "WAM-2", "Status__c": "Sent",
            "To_Phone__c": "+447700900002", "Scheduled_At__c": "2026-11-24T16:00:00.000+0000",
            "Template_Name__c": "Order_Shipped"}),
        ),
        row(
            json!({"Id": "a00000000000003AAA", "Name": "WAM-3", "Status__c": "Failed",
            "To_Phone__c": "+447700900003", "Scheduled_At__c": null,
            "Template_Name__c": "50%_off"}),
        ),
        row(
            json!({"Id": "a00000000000004AAA", "Name": "WAM-4", "Status__c": "queued",
            "To_Phone__c": "+15550100", "Template_Name__c": ""}),
        ),
    ]
}

// ---- Results -------------------------------------------------------------------------------------

#[test]
fn rows_carry_the_selected_fields_in_select_order_with_canonical_names_and_nulls_for_missing() {
    let rows = messages();

    let result = run(
        "select status__c, NAME, error_code__c from whatsapp_message__c where name = 'WAM-1'",
        &rows,
    );

    assert_eq!(result.len(), 1);
    let keys: Vec<&String> = result[0].keys().collect();
    assert_eq!(keys, ["Status__c", "Name", "Error_Code__c"]);
    assert_eq!(
        Value::Object(result[0].clone()),
        json!({"Status__c": "Queued", "Name": "WAM-1", "Error_Code__c": null})
    );
}

#[test]
fn bound_query_reports_canonical_object_and_fields() {
    let query = parse("SELECT id, status__c FROM whatsapp_message__c").unwrap();

    let bound = query.bind(schema()).unwrap();

    assert_eq!(query.object(), "whatsapp_message__c");
    assert_eq!(bound.object(), "WhatsApp_Message__c");
    assert_eq!(bound.fields(), ["Id", "Status__c"]);
    assert!(!bound.is_count());
}

#[test]
fn equals_on_text_ignores_case() {
    let rows = messages();

    let result = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Status__c = 'QUEUED'",
        &rows,
    );

    assert_eq!(names(&result), ["WAM-1", "WAM-4"]);
}

#[test]
fn not_equals_in_both_spellings_includes_rows_where_the_field_is_null() {
    let rows = messages();

    let bang = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Scheduled_At__c != 2026-11-24T15:00:00Z",
        &rows,
    );
    let angle = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Scheduled_At__c <> 2026-11-24T15:00:00Z",
        &rows,
    );

    assert_eq!(names(&bang), ["WAM-2", "WAM-3", "WAM-4"]);
    assert_eq!(bang, angle);
}

#[test]
fn equals_null_and_not_equals_null_test_presence_and_empty_text_counts_as_null() {
    let rows = messages();

    let null_schedule = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Scheduled_At__c = null",
        &rows,
    );
    let has_template = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Template_Name__c != NULL",
        &rows,
    );

    assert_eq!(names(&null_schedule), ["WAM-3", "WAM-4"]);
    assert_eq!(names(&has_template), ["WAM-1", "WAM-2", "WAM-3"]);
}

#[test]
fn ordering_operators_compare_datetimes_as_instants_whatever_the_offset() {
    let rows = messages();
    let query = |op: &str| {
        let soql = format!(
            "SELECT Name FROM WhatsApp_Message__c WHERE Scheduled_At__c {op} 2026-11-24T16:00:00.000+01:00"
        );
        names(&run(&soql, &rows))
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };

    // 16:00+01:00 is 15:00Z: WAM-1 exactly, WAM-2 an hour later; null schedules never compare.
    assert_eq!(query("<"), Vec::<String>::new());
    assert_eq!(query("<="), ["WAM-1"]);
    assert_eq!(query(">"), ["WAM-2"]);
    assert_eq!(query(">="), ["WAM-1", "WAM-2"]);
    assert_eq!(query("="), ["WAM-1"]);
}

#[test]
fn datetime_literal_forms_with_zulu_millis_and_compact_offsets_all_match() {
    let rows = messages();

    for literal in [
        "2026-11-24T15:00:00Z",
        "2026-11-24T15:00:00.000Z",
        "2026-11-24T15:00:00.000+0000",
        "2026-11-24T10:00:00-05:00",
    ] {
        let soql =
            format!("SELECT Name FROM WhatsApp_Message__c WHERE Scheduled_At__c = {literal}");

        let result = run(&soql, &rows);

        assert_eq!(names(&result), ["WAM-1"], "{literal}");
    }
}

#[test]
fn like_ignores_case_with_percent_for_runs_and_underscore_for_one_character() {
    let rows = messages();

    let prefix = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Template_Name__c LIKE 'ORDER%'",
        &rows,
    );
    let single = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE To_Phone__c LIKE '+44770090000_'",
        &rows,
    );
    let inner = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Template_Name__c LIKE '%_s%'",
        &rows,
    );

    assert_eq!(names(&prefix), ["WAM-1", "WAM-2"]);
    assert_eq!(names(&single), ["WAM-1", "WAM-2", "WAM-3"]);
    assert_eq!(names(&inner), ["WAM-2"]);
}

#[test]
fn escaped_wildcards_in_like_match_themselves() {
    let rows = messages();

    let percent = run(
        r"SELECT Name FROM WhatsApp_Message__c WHERE Template_Name__c LIKE '50\%\_%'",
        &rows,
    );
    let unescaped = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Template_Name__c LIKE '50%'",
        &rows,
    );

    assert_eq!(names(&percent), ["WAM-3"]);
    assert_eq!(names(&unescaped), ["WAM-3"]);
}

#[test]
fn string_escapes_decode_to_the_characters_they_name() {
    let rows = vec![
        row(json!({"Name": "A", "Error_Code__c": "it's"})),
        row(json!({"Name": "B", "Error_Code__c": "back\\slash"})),
        row(json!({"Name": "C", "Error_Code__c": "line\nbreak\tand \"quote\""})),
    ];

    let quote = run(
        r"SELECT Name FROM WhatsApp_Message__c WHERE Error_Code__c = 'it\'s'",
        &rows,
    );
    let backslash = run(
        r"SELECT Name FROM WhatsApp_Message__c WHERE Error_Code__c = 'back\\slash'",
        &rows,
    );
    let control = run(
        r#"SELECT Name FROM WhatsApp_Message__c WHERE Error_Code__c = 'line\nbreak\tand \"quote\"'"#,
        &rows,
    );

    assert_eq!(names(&quote), ["A"]);
    assert_eq!(names(&backslash), ["B"]);
    assert_eq!(names(&control), ["C"]);
}

#[test]
fn in_and_not_in_match_listed_values_ignoring_case_and_null_only_when_listed() {
    let rows = messages();

    let listed = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Status__c IN ('sent', 'FAILED')",
        &rows,
    );
    let not_listed = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Status__c NOT IN ('Queued')",
        &rows,
    );
    let with_null = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Scheduled_At__c IN (null, 2026-11-24T16:00:00Z)",
        &rows,
    );

    assert_eq!(names(&listed), ["WAM-2", "WAM-3"]);
    assert_eq!(names(&not_listed), ["WAM-2", "WAM-3"]);
    assert_eq!(names(&with_null), ["WAM-2", "WAM-3", "WAM-4"]);
}

#[test]
fn fifteen_character_id_literal_matches_the_stored_eighteen_character_id() {
    let id18 = ids::canonical("a00D0000001AbCd").unwrap();
    let rows = vec![
        row(json!({"Id": id18, "Name": "WAM-1"})),
        row(json!({"Id": ids::canonical("a00D0000001AbCe").unwrap(), "Name": "WAM-2"})),
    ];

    let by_15 = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Id = 'a00D0000001AbCd'",
        &rows,
    );
    let by_18_lower = run(
        &format!(
            "SELECT Name FROM WhatsApp_Message__c WHERE Id IN ('{}')",
            id18.to_lowercase()
        ),
        &rows,
    );

    assert_eq!(names(&by_15), ["WAM-1"]);
    assert_eq!(names(&by_18_lower), ["WAM-1"]);
}

#[test]
fn and_requires_all_or_requires_any_and_parentheses_group() {
    let rows = messages();

    let and = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Status__c = 'Queued' AND Template_Name__c = null",
        &rows,
    );
    let or = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Status__c = 'Sent' OR Status__c = 'Failed' OR Name = 'WAM-4'",
        &rows,
    );
    let grouped = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE (Status__c = 'Sent' OR Status__c = 'Failed') AND (Scheduled_At__c = null)",
        &rows,
    );

    assert_eq!(names(&and), ["WAM-4"]);
    assert_eq!(names(&or), ["WAM-2", "WAM-3", "WAM-4"]);
    assert_eq!(names(&grouped), ["WAM-3"]);
}

#[test]
fn not_negates_the_condition_that_follows() {
    let rows = messages();

    let not_like = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE NOT Template_Name__c LIKE 'order%'",
        &rows,
    );
    let not_group = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE NOT (Status__c = 'Queued' OR Status__c = 'Sent') AND Name != 'WAM-9'",
        &rows,
    );

    assert_eq!(names(&not_like), ["WAM-3", "WAM-4"]);
    assert_eq!(names(&not_group), ["WAM-3"]);
}

#[test]
fn order_by_defaults_to_nulls_first_ascending_and_nulls_last_descending() {
    let rows = messages();

    let ascending = run(
        "SELECT Name FROM WhatsApp_Message__c ORDER BY Scheduled_At__c",
        &rows,
    );
    let descending = run(
        "SELECT Name FROM WhatsApp_Message__c ORDER BY Scheduled_At__c DESC",
        &rows,
    );

    assert_eq!(names(&ascending), ["WAM-3", "WAM-4", "WAM-1", "WAM-2"]);
    assert_eq!(names(&descending), ["WAM-2", "WAM-1", "WAM-3", "WAM-4"]);
}

#[test]
fn order_by_several_keys_honours_each_direction_and_nulls_placement() {
    let rows = vec![
        row(
            json!({"Name": "A", "Status__c": "Sent", "Sent_At__c": "2026-11-24T10:00:00.000+0000"}),
        ),
        row(json!({"Name": "B", "Status__c": "sent", "Sent_At__c": null})),
        row(json!({"Name": "C", "Status__c": "Queued", "Sent_At__c": null})),
        row(
            json!({"Name": "D", "Status__c": "Sent", "Sent_At__c": "2026-11-24T11:00:00.000+0000"}),
        ),
        row(json!({"Name": "E", "Status__c": null})),
    ];

    let result = run(
        "SELECT Name FROM WhatsApp_Message__c ORDER BY Status__c DESC NULLS FIRST, Sent_At__c ASC NULLS LAST",
        &rows,
    );
    let nulls_first_desc = run(
        "SELECT Name FROM WhatsApp_Message__c ORDER BY Sent_At__c desc nulls first, Name asc",
        &rows,
    );

    // Status ignores case, so "Sent" and "sent" tie and Sent_At__c decides between A, B and D.
    assert_eq!(names(&result), ["E", "A", "D", "B", "C"]);
    assert_eq!(names(&nulls_first_desc), ["B", "C", "E", "D", "A"]);
}

#[test]
fn limit_applies_after_sorting() {
    let rows = messages();

    let result = run(
        "SELECT Name FROM WhatsApp_Message__c ORDER BY Name DESC LIMIT 2",
        &rows,
    );
    let zero = run("SELECT Name FROM WhatsApp_Message__c LIMIT 0", &rows);

    assert_eq!(names(&result), ["WAM-4", "WAM-3"]);
    assert!(zero.is_empty());
}

#[test]
fn keywords_fields_and_objects_are_case_insensitive() {
    let rows = messages();

    let result = run(
        "sElEcT name FrOm WHATSAPP_MESSAGE__C wHeRe STATUS__C = 'sent' oRdEr By NAME aSc LiMiT 5",
        &rows,
    );

    assert_eq!(names(&result), ["WAM-2"]);
}

#[test]
fn fields_qualified_with_the_object_name_are_accepted() {
    let rows = messages();

    let result = run(
        "SELECT WhatsApp_Message__c.Name FROM WhatsApp_Message__c WHERE whatsapp_message__c.Status__c = 'Failed'",
        &rows,
    );

    assert_eq!(names(&result), ["WAM-3"]);
}

#[test]
fn count_returns_one_empty_row_per_match() {
    let rows = messages();
    let query =
        parse("SELECT COUNT() FROM WhatsApp_Message__c WHERE Status__c = 'Queued'").unwrap();

    let bound = query.bind(schema()).unwrap();
    let result = bound.run(rows.iter());

    assert!(bound.is_count());
    assert!(bound.fields().is_empty());
    assert_eq!(result.len(), 2);
    assert!(result.iter().all(Map::is_empty));
}

#[test]
fn booleans_compare_with_true_and_false() {
    let rows = vec![
        row(json!({"Name": "A", "IsDeleted": false})),
        row(json!({"Name": "B", "IsDeleted": true})),
    ];

    let result = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE IsDeleted = FALSE",
        &rows,
    );

    assert_eq!(names(&result), ["A"]);
}

#[test]
fn dates_and_numbers_compare_by_value() {
    let rows = vec![
        row(json!({"Name": "A", "Day__c": "2026-11-23", "Amount__c": 9.5})),
        row(json!({"Name": "B", "Day__c": "2026-11-24", "Amount__c": 10})),
        row(json!({"Name": "C", "Day__c": "2026-11-25", "Amount__c": 100})),
    ];

    let days = run_on(
        schema_with_dates_and_numbers(),
        "SELECT Name FROM Visit__c WHERE Day__c >= 2026-11-24 ORDER BY Amount__c DESC",
        &rows,
    );
    let amounts = run_on(
        schema_with_dates_and_numbers(),
        "SELECT Name FROM Visit__c WHERE Amount__c > 9.75 AND Amount__c <= 100 AND Amount__c != -1",
        &rows,
    );

    assert_eq!(names(&days), ["C", "B"]);
    assert_eq!(names(&amounts), ["B", "C"]);
}

#[test]
fn tens_of_thousands_of_rows_are_filtered_sorted_and_limited() {
    let rows: Vec<Row> = (0..40_000)
        .map(|i| {
            row(json!({
                "Name": format!("WAM-{i:05}"),
                "Status__c": if i % 4 == 0 { "Queued" } else { "Sent" },
                "Scheduled_At__c": format!("2026-11-24T{:02}:{:02}:00.000+0000", (i / 60) % 24, i % 60),
            }))
        })
        .collect();

    let result = run(
        "SELECT Name FROM WhatsApp_Message__c WHERE Status__c = 'queued' AND Scheduled_At__c < 2026-11-24T00:01:00Z ORDER BY Name DESC LIMIT 3",
        &rows,
    );

    // Minute 0 of each day-hour cycle repeats every 1,440 rows; only i % 4 == 0 are queued.
    assert_eq!(names(&result), ["WAM-38880", "WAM-37440", "WAM-36000"]);
}

// ---- Errors --------------------------------------------------------------------------------------

#[test]
fn missing_from_is_malformed_at_the_end_of_the_query() {
    let error = error("SELECT Id");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert_eq!(
        error.message,
        "\nSELECT Id\n         ^\nERROR at Row:1:Column:10\nunexpected token: '<EOF>'"
    );
}

#[test]
fn misspelled_from_is_an_unexpected_token_with_the_query_echoed() {
    let error = error("SELECT Id Frm Account");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert_eq!(
        error.message,
        "\nSELECT Id Frm Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'Frm'"
    );
}

#[test]
fn and_mixed_with_or_without_parentheses_is_malformed() {
    let soql = "SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = 'c'";

    let error = error(soql);

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert_eq!(
        error.message,
        format!(
            "\n{soql}\n{}^\nERROR at Row:1:Column:65\nunexpected token: 'OR'",
            " ".repeat(64)
        )
    );
}

#[test]
fn or_mixed_with_and_inside_parentheses_is_malformed_too() {
    let error =
        error("SELECT Id FROM Contact WHERE (LastName = 'a' OR FirstName = 'b' AND Email = 'c')");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert!(error.message.ends_with("unexpected token: 'AND'"));
}

#[test]
fn errors_on_later_rows_report_that_row_and_its_column() {
    let error = error("SELECT Id\nFROM Contact\nWHERE LastName = 'a' garbage");

    assert_eq!(
        error.message,
        format!(
            "\nWHERE LastName = 'a' garbage\n{}^\nERROR at Row:3:Column:22\nunexpected token: 'garbage'",
            " ".repeat(21)
        )
    );
}

#[test]
fn trailing_garbage_after_limit_is_malformed() {
    let error = error("SELECT Id FROM Contact LIMIT 5 5");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert!(error
        .message
        .ends_with("ERROR at Row:1:Column:32\nunexpected token: '5'"));
}

#[test]
fn bad_limits_are_unexpected_tokens() {
    let cases = [
        ("SELECT Id FROM Contact LIMIT -1", "'-1'"),
        ("SELECT Id FROM Contact LIMIT abc", "'abc'"),
        ("SELECT Id FROM Contact LIMIT 1.5", "'1.5'"),
        ("SELECT Id FROM Contact LIMIT", "'<EOF>'"),
        ("SELECT Id FROM Contact LIMIT 99999999999", "'99999999999'"),
    ];

    for (soql, token) in cases {
        let error = error(soql);

        assert_eq!(error.error_code, "MALFORMED_QUERY", "{soql}");
        assert!(
            error
                .message
                .ends_with(&format!("unexpected token: {token}")),
            "{soql}: {}",
            error.message
        );
    }
}

#[test]
fn empty_in_list_is_malformed() {
    let error = error("SELECT Id FROM Contact WHERE LastName IN ()");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert!(error
        .message
        .ends_with("ERROR at Row:1:Column:43\nunexpected token: ')'"));
}

#[test]
fn unterminated_string_is_reported_as_antlr_does_at_the_end() {
    let error = error("SELECT Id FROM Contact WHERE LastName = 'abc");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert_eq!(
        error.message,
        format!(
            "\nSELECT Id FROM Contact WHERE LastName = 'abc\n{}^\nERROR at Row:1:Column:44\nline 1:44 mismatched character '<EOF>' expecting '''",
            " ".repeat(43)
        )
    );
}

#[test]
fn unknown_escape_in_a_string_is_malformed() {
    let error = error(r"SELECT Id FROM Contact WHERE LastName = 'a\qb'");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert!(error.message.ends_with(
        r"Invalid string literal 'a\qb'. Illegal character sequence '\q' in string literal."
    ));
}

#[test]
fn stray_character_has_no_viable_alternative() {
    let error = error("SELECT Id FROM Contact WHERE LastName # 'a'");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert!(error
        .message
        .ends_with("line 1:38 no viable alternative at character '#'"));
}

#[test]
fn datetime_literal_without_a_zone_is_malformed() {
    let error = error("SELECT Id FROM Contact WHERE CreatedDate > 2026-11-24T15:00:00");

    assert_eq!(error.error_code, "MALFORMED_QUERY");
    assert!(error
        .message
        .ends_with("Invalid datetime: 2026-11-24T15:00:00"));
}

#[test]
fn unknown_field_is_invalid_field_in_salesforce_words() {
    let error = error("SELECT Id, Foo__c FROM WhatsApp_Message__c");

    assert_eq!(error.error_code, "INVALID_FIELD");
    assert_eq!(
        error.message,
        "\nSELECT Id, Foo__c FROM WhatsApp_Message__c\n           ^\nERROR at Row:1:Column:12\n\
         No such column 'Foo__c' on entity 'WhatsApp_Message__c'. If you are attempting to use a \
         custom field, be sure to append the '__c' after the custom field name. Please reference \
         your WSDL or the describe call for the appropriate names."
    );
}

#[test]
fn unknown_fields_in_where_and_order_by_are_invalid_fields_too() {
    let in_where = error("SELECT Id FROM Contact WHERE Nope = 'x'");
    let in_order = error("SELECT Id FROM Contact ORDER BY Nope");

    assert_eq!(in_where.error_code, "INVALID_FIELD");
    assert!(in_where
        .message
        .contains("No such column 'Nope' on entity 'Contact'"));
    assert_eq!(in_order.error_code, "INVALID_FIELD");
    assert!(in_order.message.contains("ERROR at Row:1:Column:33"));
}

#[test]
fn unknown_object_is_invalid_type_in_salesforce_words() {
    let error = error("SELECT Id FROM Foo__c");

    assert_eq!(error.error_code, "INVALID_TYPE");
    assert_eq!(
        error.message,
        "\nSELECT Id FROM Foo__c\n               ^\nERROR at Row:1:Column:16\n\
         sObject type 'Foo__c' is not supported. If you are attempting to use a custom object, be \
         sure to append the '__c' after the entity name. Please reference your WSDL or the \
         describe call for the appropriate names."
    );
}

#[test]
fn unknown_object_is_reported_before_unknown_fields() {
    let error = error("SELECT Nope FROM Nothing__c");

    assert_eq!(error.error_code, "INVALID_TYPE");
}

#[test]
fn platform_events_cannot_be_queried() {
    let error = error("SELECT Message_Id__c FROM WhatsApp_Outbound__e");

    assert_eq!(error.error_code, "INVALID_TYPE");
    assert_eq!(
        error.message,
        "entity type WhatsApp_Outbound__e does not support query"
    );
}

#[test]
fn quoted_datetime_is_invalid_field() {
    let error =
        error("SELECT Id FROM WhatsApp_Message__c WHERE Scheduled_At__c < '2026-11-24T15:00:00Z'");

    assert_eq!(error.error_code, "INVALID_FIELD");
    assert_eq!(
        error.message,
        format!(
            "\nSELECT Id FROM WhatsApp_Message__c WHERE Scheduled_At__c < '2026-11-24T15:00:00Z'\n{}^\n\
             ERROR at Row:1:Column:60\nvalue of filter criterion for field 'Scheduled_At__c' must \
             be of type dateTime and should not be enclosed in quotes",
            " ".repeat(59)
        )
    );
}

#[test]
fn date_literal_on_a_datetime_field_is_invalid_field() {
    let error = error("SELECT Id FROM WhatsApp_Message__c WHERE scheduled_at__c < 2026-11-24");

    assert_eq!(error.error_code, "INVALID_FIELD");
    assert!(error.message.ends_with(
        "value of filter criterion for field 'Scheduled_At__c' must be of type dateTime and should not be enclosed in quotes"
    ));
}

#[test]
fn datetime_literal_on_a_date_field_is_invalid_field() {
    let error = error_on(
        schema_with_dates_and_numbers(),
        "SELECT Id FROM Visit__c WHERE Day__c = 2026-11-24T00:00:00Z",
    );

    assert_eq!(error.error_code, "INVALID_FIELD");
    assert!(error.message.ends_with(
        "value of filter criterion for field 'Day__c' must be of type date and should not be enclosed in quotes"
    ));
}

#[test]
fn quoted_number_and_quoted_boolean_are_invalid_fields() {
    let number = error_on(
        schema_with_dates_and_numbers(),
        "SELECT Id FROM Visit__c WHERE Amount__c > '5'",
    );
    let boolean = error("SELECT Id FROM Contact WHERE IsDeleted = 'false'");

    assert_eq!(number.error_code, "INVALID_FIELD");
    assert!(number
        .message
        .ends_with("must be of type double and should not be enclosed in quotes"));
    assert_eq!(boolean.error_code, "INVALID_FIELD");
    assert!(boolean
        .message
        .ends_with("must be of type boolean and should not be enclosed in quotes"));
}

#[test]
fn unquoted_value_on_a_text_field_must_be_quoted() {
    let error = error("SELECT Id FROM Contact WHERE LastName = 42");

    assert_eq!(error.error_code, "INVALID_FIELD");
    assert!(error.message.ends_with(
        "value of filter criterion for field 'LastName' must be of type string and should be enclosed in quotes"
    ));
}

#[test]
fn malformed_id_literal_is_an_invalid_filter_operator() {
    let error = error("SELECT Id FROM Contact WHERE Id = '003xyz'");

    assert_eq!(error.error_code, "INVALID_QUERY_FILTER_OPERATOR");
    assert_eq!(error.message, "invalid ID field: 003xyz");
}

#[test]
fn long_text_areas_can_be_neither_filtered_nor_sorted() {
    let filtered = error("SELECT Id FROM WhatsApp_Message__c WHERE Body__c = 'hi'");
    let sorted = error("SELECT Id FROM WhatsApp_Message__c ORDER BY Body__c");

    assert_eq!(filtered.error_code, "INVALID_FIELD");
    assert!(filtered
        .message
        .ends_with("field 'Body__c' can not be filtered in query call"));
    assert_eq!(sorted.error_code, "INVALID_FIELD");
    assert!(sorted
        .message
        .ends_with("field 'Body__c' can not be sorted in a query call"));
}

#[test]
fn relationship_paths_other_than_a_custom_lookups_fields_are_not_understood() {
    for (soql, relationship) in [
        (
            "SELECT Nobody__r.Name FROM WhatsApp_Message__c",
            "Nobody__r",
        ),
        (
            "SELECT Id FROM WhatsApp_Message__c WHERE Contact__r.Name = 'x'",
            "Contact__r",
        ),
    ] {
        let error = error(soql);

        assert_eq!(error.error_code, "INVALID_FIELD", "{soql}");
        assert!(
            error.message.contains(&format!(
                "Didn't understand relationship '{relationship}' in field path."
            )),
            "{soql}: {}",
            error.message
        );
    }
}

#[test]
fn a_lookups_field_is_nested_under_its_relationship_or_null_without_a_record() {
    let contact_id = "003000000000001AAA";
    let rows = [
        row(json!({"Id": "a00000000000001AAA", "Contact__c": contact_id})),
        row(json!({"Id": "a00000000000002AAA", "Contact__c": null})),
    ];
    let bound =
        parse("SELECT Id, Contact__r.WhatsApp_Marketing_Opt_Out__c FROM WhatsApp_Message__c")
            .unwrap()
            .bind(schema())
            .unwrap();

    let contact = row(json!({"Id": contact_id, "WhatsApp_Marketing_Opt_Out__c": true}));
    let mut result = bound.run(rows.iter());
    bound.attach_relations(&mut result, |object, id| {
        (object == "Contact" && id == contact_id).then_some(&contact)
    });

    assert_eq!(
        result[0]["Contact__r"],
        json!({"attributes": {"type": "Contact"}, "WhatsApp_Marketing_Opt_Out__c": true})
    );
    assert_eq!(result[1]["Contact__r"], Value::Null);
}

#[test]
fn selecting_a_field_twice_is_an_invalid_field() {
    let error = error("SELECT Id, Name, id FROM Contact");

    assert_eq!(error.error_code, "INVALID_FIELD");
    assert_eq!(error.message, "duplicate field selected: Id");
}

#[test]
fn keywords_cannot_stand_in_for_names() {
    let no_fields = error("SELECT FROM Contact");
    let no_value = error("SELECT Id FROM Contact WHERE LastName =");

    assert!(no_fields.message.ends_with("unexpected token: 'FROM'"));
    assert!(no_value.message.ends_with("unexpected token: '<EOF>'"));
}

#[test]
fn no_input_makes_the_parser_panic() {
    let valid = "SELECT Id, Name FROM WhatsApp_Message__c WHERE (Status__c IN ('a', 'b\\'c') \
                 OR NOT Name LIKE '%x_') AND Scheduled_At__c >= 2026-11-24T15:00:00.000+01:00 \
                 ORDER BY Name DESC NULLS LAST LIMIT 10";
    // Every prefix and every single-character deletion of a rich valid query…
    for end in (0..=valid.len()).filter(|&i| valid.is_char_boundary(i)) {
        let _ = parse(&valid[..end]).map(|q| q.bind(schema()));
        let mut deleted = valid.to_string();
        if end < valid.len() {
            deleted.remove(end);
        }
        let _ = parse(&deleted).map(|q| q.bind(schema()));
    }
    // …and pseudo-random strings over SOQL's alphabet, multi-byte characters included.
    let alphabet: Vec<char> = "SELECTFROMWHERAND ORNTLIKN()',=<>!\\%_.-+:0123456789TZé\n\t\"#"
        .chars()
        .collect();
    let mut seed: u64 = 0x5eed;
    for _ in 0..20_000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let length = (seed >> 58) as usize;
        let text: String = (0..length)
            .map(|i| {
                let pick = (seed.rotate_left(i as u32 * 7) >> 40) as usize;
                alphabet[pick % alphabet.len()]
            })
            .collect();
        let _ = parse(&text).map(|q| q.bind(schema()));
        let _ = parse(&format!("SELECT Id FROM Contact WHERE {text}")).map(|q| q.bind(schema()));
    }
}

#[test]
fn group_after_from_is_the_group_object_as_in_a_queue_lookup() {
    let query =
        parse("SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = 'WhatsApp_Inbound'")
            .unwrap()
            .bind(schema())
            .unwrap();

    assert_eq!(query.object(), "Group");
}

// ---- Reads by primary key ------------------------------------------------------------------------

/// `n` messages as the org keeps them: keyed by their generated (canonical) Ids, in creation order,
/// with statuses cycling Queued, Sent, Read and names out of creation order.
fn message_table(n: usize) -> Table {
    let generator = ids::IdGenerator::default();
    (0..n)
        .map(|i| {
            let id = generator.next("a00");
            let status = ["Queued", "Sent", "Read"][i % 3];
            let name = format!("WAM-{:03}", (i * 7) % n);
            let record = row(json!({"Id": id, "Name": name, "Status__c": status}));
            (id, record)
        })
        .collect()
}

#[test]
fn a_where_naming_records_by_id_answers_exactly_as_a_scan_of_every_record() {
    let table = message_table(60);
    let ids: Vec<&String> = table.keys().collect();
    // 15-character forms, an 18-character one in lower case, a repeat, Ids out of creation order
    // and one of no record.
    let listed = [
        ids[40][..15].to_string(),
        ids[3][..15].to_string(),
        ids[9].to_lowercase(),
        ids[3].to_string(),
        ids[21].to_string(),
        ids[22].to_string(),
        ids[57][..15].to_string(),
        ids[0].to_string(),
        ids::canonical("a00D0000001AbCd").unwrap(),
    ]
    .map(|id| format!("'{id}'"))
    .join(",");
    let queries = [
        format!("SELECT Id, Name FROM WhatsApp_Message__c WHERE Id IN ({listed})"),
        format!(
            "SELECT Name, Status__c FROM WhatsApp_Message__c WHERE Status__c = 'queued' AND Id IN ({listed}) ORDER BY Name DESC LIMIT 3"
        ),
        format!(
            "SELECT Name FROM WhatsApp_Message__c WHERE Id IN ({listed}) AND (Status__c = 'Sent' OR Name > 'WAM-030') ORDER BY Status__c, Name NULLS LAST LIMIT 4"
        ),
        format!(
            "SELECT Name FROM WhatsApp_Message__c WHERE Id IN ({listed}) AND Id != '{}' AND NOT Status__c = 'Read'",
            ids[21]
        ),
        format!("SELECT COUNT() FROM WhatsApp_Message__c WHERE Id IN ({listed}) AND Status__c != 'Sent'"),
        format!("SELECT Name FROM WhatsApp_Message__c WHERE Id = '{}'", &ids[33][..15]),
        format!("SELECT Name FROM WhatsApp_Message__c WHERE Id IN ({listed}) OR Status__c = 'Read' LIMIT 30"),
        format!("SELECT Name FROM WhatsApp_Message__c WHERE Id NOT IN ({listed}) ORDER BY Name LIMIT 5"),
        format!("SELECT Name FROM WhatsApp_Message__c WHERE Id IN ({listed}, null)"),
        format!("SELECT Name FROM WhatsApp_Message__c WHERE Id IN ({listed}) LIMIT 0"),
    ];

    for soql in &queries {
        let bound = parse(soql).unwrap().bind(schema()).unwrap();

        let by_key = bound.run_table(&table);
        let scanned = bound.run(table.values());

        assert_eq!(by_key, scanned, "{soql}");
    }
    let bound = parse(&queries[1]).unwrap().bind(schema()).unwrap();
    assert_eq!(
        names(&bound.run_table(&table)),
        ["WAM-039", "WAM-027", "WAM-021"],
        "the queued among those listed (records 0, 3, 9, 21, 57), by name descending"
    );
}

#[test]
fn an_id_filter_reads_the_records_it_names_by_key_instead_of_testing_every_row() {
    // A record whose own Id field is missing: a scan cannot match it by Id, a read by key does.
    let key = ids::canonical("a00D0000001AbCd").unwrap();
    let table: Table = [(
        key.clone(),
        row(json!({"Name": "WAM-1", "Status__c": "Queued"})),
    )]
    .into_iter()
    .collect();
    let bound = parse(&format!(
        "SELECT Name FROM WhatsApp_Message__c WHERE Id = '{}' AND Status__c = 'Queued'",
        &key[..15]
    ))
    .unwrap()
    .bind(schema())
    .unwrap();

    let by_key = bound.run_table(&table);
    let scanned = bound.run(table.values());

    assert_eq!(names(&by_key), ["WAM-1"]);
    assert!(scanned.is_empty());
}
