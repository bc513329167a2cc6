//! Transparent for what the sidecar does not manage: the DynamoDB Streams API through the
//! streams SDK (with the policies of the stream's table), compressed request bodies, DynamoDB's
//! 413, the region's own headers, CORS preflights, and the poison request a region answers
//! with a 500 every time (a versioned write's too, which the sidecar sends with a fresh write
//! id each time the SDK retries it).

#![allow(clippy::expect_used)]

mod support;

use std::io::Write as _;

use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use serde_json::json;
use support::{
    AUDIT_TABLE, DynamoLocal, Mode, RawRequest, RegionFixture, SIDECAR_ACCESS_KEY_ID, Sidecar,
    SidecarConfig, TABLE, audit_section, create_global_catalog, item, keyed_table, metric,
    sdk_client, sdk_client_with, spool_dir,
};

/// A DynamoDB Streams client for `endpoint`, signing with the application's keys.
fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::from_conf(streams_config(endpoint).build())
}

/// The config of [`streams_client`], to adjust (its retries, say) before building.
fn streams_config(endpoint: &str) -> aws_sdk_dynamodbstreams::config::Builder {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Builder, Credentials, Region};
    let credentials = Credentials::new(
        support::CLIENT_ACCESS_KEY_ID,
        support::CLIENT_SECRET,
        None,
        None,
        "globalscale-tests",
    );
    Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
}

/// Creates `name` (keyed like `GlobalCatalog`) with a stream of new and old images, straight
/// in the region.
async fn create_streamed_table(ddb: &DynamoLocal, name: &str) {
    let spec = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .expect("stream specification");
    keyed_table(&sdk_client(&ddb.endpoint(0)), name, "ItemID", "Category")
        .stream_specification(spec)
        .send()
        .await
        .expect("CreateTable with a stream");
}

/// One region in front of DynamoDB Local, its streams endpoint the same fixture.
async fn setup(config: SidecarConfig) -> (DynamoLocal, RegionFixture, Sidecar) {
    let ddb = DynamoLocal::single().await;
    let (region, sidecar) = start(&ddb, config).await;
    (ddb, region, sidecar)
}

/// The region fixture in front of `ddb` and the sidecar in front of it.
async fn start(ddb: &DynamoLocal, config: SidecarConfig) -> (RegionFixture, Sidecar) {
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let config = config
        .region("us-east-1", &region.endpoint())
        .streams_endpoint("us-east-1", &region.endpoint())
        .section("[routing]\nprobe_interval_ms = 600000");
    let sidecar = Sidecar::start(&config).await;
    (region, sidecar)
}

/// Every record of the table's (only) stream, read through `streams` from the start.
async fn records_of(
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
    let listed = streams
        .list_streams()
        .table_name(table)
        .send()
        .await
        .expect("ListStreams");
    let arn = listed.streams()[0]
        .stream_arn()
        .expect("StreamArn")
        .to_owned();
    let described = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("DescribeStream");
    let description = described.stream_description().expect("StreamDescription");
    assert_eq!(description.table_name(), Some(table));
    let mut records = Vec::new();
    for shard in description.shards() {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().expect("ShardId"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator");
        let answer = streams
            .get_records()
            .shard_iterator(iterator.shard_iterator().expect("ShardIterator"))
            .send()
            .await
            .expect("GetRecords");
        records.extend(answer.records().iter().cloned());
    }
    records
}

fn stream_key(record: &aws_sdk_dynamodbstreams::types::Record) -> String {
    match record
        .dynamodb()
        .and_then(|d| d.keys())
        .and_then(|k| k.get("ItemID"))
    {
        Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(s)) => s.clone(),
        other => panic!("a record without a string ItemID: {other:?}"),
    }
}

/// The Streams API passes through a sidecar that manages no table: the streams SDK lists,
/// describes and reads a stream through it, each request signed by the sidecar for the
/// region's streams endpoint; even one the sidecar cannot read gets the region's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_api_passes_through() {
    let (ddb, region, sidecar) = setup(SidecarConfig::new().unmanaged()).await;
    create_streamed_table(&ddb, "Events").await;
    let client = sdk_client(&sidecar.endpoint());
    for id in ["e1", "e2"] {
        client
            .put_item()
            .table_name("Events")
            .set_item(Some(item(id, "x", &[("v", "1")])))
            .send()
            .await
            .expect("PutItem");
    }
    let streams = streams_client(&sidecar.endpoint());
    let records = records_of(&streams, "Events").await;
    let keys: Vec<String> = records.iter().map(stream_key).collect();
    assert_eq!(keys, ["e1", "e2"]);
    // With no policy that could apply, a stream ARN the sidecar cannot read is the region's
    // to judge, and its answer reaches the client.
    let unknown = streams
        .describe_stream()
        .stream_arn("not-a-stream-arn-at-all-but-long-enough-for-the-sdk")
        .send()
        .await
        .expect_err("DescribeStream of no stream");
    assert_eq!(
        unknown.as_service_error().and_then(|e| e.meta().code()),
        Some("ResourceNotFoundException"),
        "{unknown:?}"
    );
    for operation in [
        "ListStreams",
        "DescribeStream",
        "GetShardIterator",
        "GetRecords",
    ] {
        let sent = region.recorded_op(operation);
        assert!(!sent.is_empty(), "{operation} never reached the region");
        for request in sent {
            assert_eq!(
                request.header("x-amz-target"),
                Some(format!("DynamoDBStreams_20120810.{operation}").as_str())
            );
            let authorization = request.header("authorization").unwrap_or_default();
            assert!(
                authorization.contains(SIDECAR_ACCESS_KEY_ID)
                    && authorization.contains("/us-east-1/dynamodb/aws4_request"),
                "{operation} not signed by the sidecar for the region: {authorization}"
            );
        }
    }
}

/// On a managed table with `key_prefix`, records come back as the client wrote them: keys
/// without the prefix, no write id, and another namespace's records left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_tables_records_come_back_as_the_client_wrote_them() {
    let config = SidecarConfig::new()
        .table_line("key_prefix = \"{region}#\"")
        .table_line("version_attribute = \"Version\"");
    let (ddb, _region, sidecar) = setup(config).await;
    create_streamed_table(&ddb, TABLE).await;
    let client = sdk_client(&sidecar.endpoint());
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("mine", "x", &[("v", "1")])))
        .send()
        .await
        .expect("PutItem through the sidecar");
    // Another home region's item, and one outside every namespace, written in the region.
    let direct = sdk_client(&ddb.endpoint(0));
    for id in ["us-west-2#theirs", "unprefixed"] {
        direct
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item(id, "x", &[])))
            .send()
            .await
            .expect("PutItem in the region");
    }
    // The region's own reading shows the stored form.
    let stored = records_of(&streams_client(&ddb.endpoint(0)), TABLE).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stream_key(&stored[0]), "us-east-1#mine");

    let records = records_of(&streams_client(&sidecar.endpoint()), TABLE).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(stream_key(&records[0]), "mine");
    let image = records[0]
        .dynamodb()
        .and_then(|d| d.new_image())
        .expect("NewImage");
    assert_eq!(
        image.get("ItemID"),
        Some(&aws_sdk_dynamodbstreams::types::AttributeValue::S(
            "mine".into()
        ))
    );
    assert!(image.contains_key("Version"), "{image:?}");
    assert!(
        image.keys().all(|name| !name.starts_with("__globalscale")),
        "the write id shows: {image:?}"
    );
}

/// The audit table's stream is refused whichever operation names it, and a listing leaves
/// it out; a stream ARN the sidecar cannot read is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_tables_stream_is_refused() {
    let spool = spool_dir();
    let ddb = DynamoLocal::single().await;
    create_streamed_table(&ddb, AUDIT_TABLE).await;
    create_streamed_table(&ddb, "Events").await;
    let config = SidecarConfig::new().section(&audit_section(spool.path(), ""));
    let (region, sidecar) = start(&ddb, config).await;
    let streams = streams_client(&sidecar.endpoint());
    let direct = streams_client(&ddb.endpoint(0));
    let audit_arn = direct
        .list_streams()
        .table_name(AUDIT_TABLE)
        .send()
        .await
        .expect("ListStreams in the region")
        .streams()[0]
        .stream_arn()
        .expect("StreamArn")
        .to_owned();

    let listed = streams.list_streams().send().await.expect("ListStreams");
    let tables: Vec<_> = listed
        .streams()
        .iter()
        .filter_map(|s| s.table_name())
        .collect();
    assert_eq!(tables, ["Events"]);
    let refused = streams
        .describe_stream()
        .stream_arn(&audit_arn)
        .send()
        .await
        .expect_err("DescribeStream of the audit table's stream");
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDeniedException"),
        "{refused:?}"
    );
    let by_name = streams
        .list_streams()
        .table_name(AUDIT_TABLE)
        .send()
        .await
        .expect_err("ListStreams of the audit table");
    assert!(
        format!("{by_name:?}").contains("AccessDenied"),
        "{by_name:?}"
    );
    let forged = RawRequest::with_target(
        "DynamoDBStreams_20120810.GetRecords",
        json!({"ShardIterator": "not-an-iterator"}).to_string(),
    )
    .send(sidecar.listen_addr())
    .await;
    assert_eq!(forged.status, 400, "{}", forged.text());
    assert!(forged.error_type().ends_with("#ValidationException"));
    assert!(region.recorded_op("DescribeStream").is_empty());
    assert!(region.recorded_op("GetRecords").is_empty());
}

/// Two regions, each its own DynamoDB Local behind a front: the home region `us-east-1`
/// first, then `ddblocal`, the region DynamoDB Local names in every stream ARN. Their stores
/// are apart, as two replicas' streams are: a stream is only where its ARN says.
struct TwoRegions {
    home_ddb: DynamoLocal,
    other_ddb: DynamoLocal,
    home: RegionFixture,
    other: RegionFixture,
}

impl TwoRegions {
    async fn start() -> Self {
        let home_ddb = DynamoLocal::single().await;
        let other_ddb = DynamoLocal::single().await;
        let home = RegionFixture::start(&home_ddb.endpoint(0)).await;
        let other = RegionFixture::start(&other_ddb.endpoint(0)).await;
        Self {
            home_ddb,
            other_ddb,
            home,
            other,
        }
    }

    /// `config` with both regions, home first, each serving streams on its own front.
    fn config(&self, config: SidecarConfig) -> SidecarConfig {
        config
            .region("us-east-1", &self.home.endpoint())
            .streams_endpoint("us-east-1", &self.home.endpoint())
            .region("ddblocal", &self.other.endpoint())
            .streams_endpoint("ddblocal", &self.other.endpoint())
    }
}

/// Whether a recorded request is of the Streams API.
fn is_streams(request: &support::Recorded) -> bool {
    request
        .header("x-amz-target")
        .is_some_and(|t| t.starts_with("DynamoDBStreams_20120810."))
}

/// The HTTP status and DynamoDB error code of a failed SDK call, as the SDK read them.
fn error_shape<T, E>(
    result: Result<T, aws_sdk_dynamodbstreams::error::SdkError<E>>,
) -> (Option<u16>, Option<String>)
where
    E: aws_sdk_dynamodbstreams::error::ProvideErrorMetadata,
{
    use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata as _;
    let Err(error) = result else {
        panic!("the call succeeded");
    };
    (
        error.raw_response().map(|r| r.status().as_u16()),
        error.code().map(str::to_owned),
    )
}

/// Describes the stream `arn`, then reads its first shard from the start: the shard's id,
/// the iterator read with, and the `ItemID` of each record.
async fn read_first_shard(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> (String, String, Vec<String>) {
    let described = streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .expect("DescribeStream through the sidecar");
    let description = described.stream_description().expect("StreamDescription");
    let shard = description.shards()[0]
        .shard_id()
        .expect("ShardId")
        .to_owned();
    let iterator = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator through the sidecar")
        .shard_iterator()
        .expect("ShardIterator")
        .to_owned();
    let answer = streams
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .expect("GetRecords through the sidecar");
    let keys: Vec<String> = answer.records().iter().map(stream_key).collect();
    (shard, iterator, keys)
}

/// A stream ARN naming a region that is not home is read in that region, signed for it, and
/// never in home; with that region down, the request fails with DynamoDB's 503 instead of
/// failing over to home, which has no such stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_read_only_in_the_region_its_arn_names() {
    let regions = TwoRegions::start().await;
    create_streamed_table(&regions.other_ddb, "Events").await;
    sdk_client(&regions.other_ddb.endpoint(0))
        .put_item()
        .table_name("Events")
        .set_item(Some(item("e1", "x", &[])))
        .send()
        .await
        .expect("PutItem in the ddblocal region");
    let config = regions.config(
        SidecarConfig::new()
            .unmanaged()
            .section("[routing]\nprobe_interval_ms = 600000"),
    );
    let sidecar = Sidecar::start(&config).await;
    let arn = streams_client(&regions.other_ddb.endpoint(0))
        .list_streams()
        .table_name("Events")
        .send()
        .await
        .expect("ListStreams in the ddblocal region")
        .streams()[0]
        .stream_arn()
        .expect("StreamArn")
        .to_owned();
    assert!(arn.starts_with("arn:aws:dynamodb:ddblocal:"), "{arn}");
    // The home region's store has no such table: only the named region can answer.
    assert!(
        streams_client(&regions.home_ddb.endpoint(0))
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .is_err()
    );

    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        streams_config(&sidecar.endpoint())
            .retry_config(aws_sdk_dynamodbstreams::config::retry::RetryConfig::disabled())
            .build(),
    );
    let (shard, iterator, keys) = read_first_shard(&streams, &arn).await;
    assert_eq!(keys, ["e1"]);

    let sent: Vec<_> = regions
        .other
        .recorded()
        .into_iter()
        .filter(is_streams)
        .collect();
    for operation in ["DescribeStream", "GetShardIterator", "GetRecords"] {
        assert_eq!(
            sent.iter()
                .filter(|r| r.operation() == Some(operation))
                .count(),
            1,
            "{operation} sent to the ddblocal region"
        );
    }
    for request in &sent {
        let authorization = request.header("authorization").unwrap_or_default();
        assert!(
            authorization.contains("/ddblocal/dynamodb/aws4_request"),
            "not signed for ddblocal: {authorization}"
        );
    }
    support::verify_signatures(&sent, "ddblocal", None);
    assert!(
        !regions.home.recorded().iter().any(is_streams),
        "a request for the ddblocal stream reached home"
    );

    // The stream's region is down: each request fails as a read no region could serve does,
    // and none goes to home.
    regions.other.set_mode(Mode::Refuse).await;
    let failures = [
        error_shape(streams.describe_stream().stream_arn(&arn).send().await),
        error_shape(
            streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await,
        ),
        error_shape(streams.get_records().shard_iterator(&iterator).send().await),
    ];
    for (status, code) in failures {
        assert_eq!(
            (status, code.as_deref()),
            (Some(503), Some("ServiceUnavailable"))
        );
    }
    assert!(
        !regions.home.recorded().iter().any(is_streams),
        "a request for the ddblocal stream failed over to home"
    );
}

/// Turns off the stream of `table`, straight in the region: its shard closes, and reading it
/// to the end gives the last records without a `NextShardIterator`.
async fn close_stream(ddb: &DynamoLocal, table: &str) {
    let off = StreamSpecification::builder()
        .stream_enabled(false)
        .build()
        .expect("stream specification");
    sdk_client(&ddb.endpoint(0))
        .update_table()
        .table_name(table)
        .stream_specification(off)
        .send()
        .await
        .expect("UpdateTable turning the stream off");
}

/// The end of a closed shard comes without a `NextShardIterator` to check the stream by:
/// its records are shown once the stream the iterator names confirms them, and an iterator
/// naming an allowed stream whose answer is another table's records is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_at_the_end_of_a_closed_shard_are_confirmed_by_their_stream() {
    let ddb = DynamoLocal::single().await;
    for (table, id) in [("Orders1", "o1"), ("Secret", "secret-item")] {
        create_streamed_table(&ddb, table).await;
        sdk_client(&ddb.endpoint(0))
            .put_item()
            .table_name(table)
            .set_item(Some(item(id, "x", &[])))
            .send()
            .await
            .expect("PutItem in the region");
        close_stream(&ddb, table).await;
    }
    // The closed shard's end as the region answers it: Secret's record, no next iterator.
    let direct = streams_client(&ddb.endpoint(0));
    let secret = direct
        .list_streams()
        .table_name("Secret")
        .send()
        .await
        .expect("ListStreams in the region")
        .streams()[0]
        .stream_arn()
        .expect("StreamArn")
        .to_owned();
    let (_, iterator, keys) = read_first_shard(&direct, &secret).await;
    assert_eq!(keys, ["secret-item"]);
    let ddb_addr = std::net::SocketAddr::from(([127, 0, 0, 1], ddb.port(0)));
    let secret_end = RawRequest::with_target(
        "DynamoDBStreams_20120810.GetRecords",
        json!({"ShardIterator": iterator}).to_string(),
    )
    .send(ddb_addr)
    .await;
    assert_eq!(secret_end.status, 200, "{}", secret_end.text());
    assert!(!secret_end.text().contains("NextShardIterator"));

    let clients = format!(
        "[auth]\nmode = \"sigv4\"\n\n[[clients]]\nname = \"app\"\naccess_key_id = {:?}\nsecret_access_key = {:?}\ntables = [\"Orders*\"]",
        support::CLIENT_ACCESS_KEY_ID,
        support::CLIENT_SECRET
    );
    let (region, sidecar) = start(&ddb, SidecarConfig::new().section(&clients)).await;
    let streams = streams_client(&sidecar.endpoint());
    let records = records_of(&streams, "Orders1").await;
    assert_eq!(records.iter().map(stream_key).collect::<Vec<_>>(), ["o1"]);
    assert!(
        region
            .recorded_op("GetShardIterator")
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("AT_SEQUENCE_NUMBER")),
        "the closed shard's records were shown unconfirmed"
    );

    // An iterator whose readable start names Orders1's stream, read by the region as
    // Secret's (the region reads the opaque rest).
    let orders = streams
        .list_streams()
        .table_name("Orders1")
        .send()
        .await
        .expect("ListStreams")
        .streams()[0]
        .stream_arn()
        .expect("StreamArn")
        .to_owned();
    region
        .set_mode(Mode::AnswerWhen("forged-rest", secret_end.text()))
        .await;
    let forged = streams
        .get_records()
        .shard_iterator(format!("{orders}|001|forged-rest"))
        .send()
        .await
        .expect_err("GetRecords of another table's records");
    assert_eq!(
        forged.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDeniedException"),
        "{forged:?}"
    );
    assert!(!format!("{forged:?}").contains("secret-item"), "{forged:?}");
}

/// A listing paged with `Limit` shows every stream the client may read once, and no
/// `LastEvaluatedStreamArn` names the audit table's stream, even where a page of the
/// region's ends on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_listing_never_names_a_hidden_stream() {
    let spool = spool_dir();
    let ddb = DynamoLocal::single().await;
    // DynamoDB Local pages in the order of table names: the audit table's stream ends a page.
    for table in ["Events1", AUDIT_TABLE, "Events2", "Zulu"] {
        create_streamed_table(&ddb, table).await;
    }
    let config = SidecarConfig::new().section(&audit_section(spool.path(), ""));
    let (_region, sidecar) = start(&ddb, config).await;
    let streams = streams_client(&sidecar.endpoint());
    for limit in [1, 2, 3] {
        let (mut tables, mut cursors) = (Vec::new(), Vec::new());
        let mut after: Option<String> = None;
        loop {
            let page = support::within("a paged listing", async {
                streams
                    .list_streams()
                    .limit(limit)
                    .set_exclusive_start_stream_arn(after.clone())
                    .send()
                    .await
                    .expect("ListStreams")
            })
            .await;
            let shown: Vec<_> = page
                .streams()
                .iter()
                .filter_map(|s| s.table_name())
                .collect();
            assert!(shown.len() <= usize::try_from(limit).unwrap(), "{page:?}");
            tables.extend(shown.into_iter().map(str::to_owned));
            after = page.last_evaluated_stream_arn().map(str::to_owned);
            match &after {
                Some(cursor) => cursors.push(cursor.clone()),
                None => break,
            }
        }
        tables.sort();
        assert_eq!(tables, ["Events1", "Events2", "Zulu"], "Limit {limit}");
        assert!(
            cursors.iter().all(|c| !c.contains(AUDIT_TABLE)),
            "Limit {limit}: {cursors:?}"
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

fn put(id: &str) -> String {
    json!({"TableName": TABLE, "Item": {"ItemID": {"S": id}, "Category": {"S": "x"}}}).to_string()
}

/// gzip and deflate bodies are decoded and handled as any request; damaged ones get
/// DynamoDB's 500, a bomb DynamoDB's 413, and none of them reaches the region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_requests_are_accepted_within_the_size_limit() {
    let (ddb, region, sidecar) = setup(SidecarConfig::new()).await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let addr = sidecar.listen_addr();
    let zipped = RawRequest::new("PutItem", gzip(put("gz").as_bytes()))
        .header("content-encoding", "gzip")
        .send(addr)
        .await;
    assert_eq!(zipped.status, 200, "{}", zipped.text());
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(put("zlib").as_bytes()).expect("zlib");
    let deflated = RawRequest::new("PutItem", zlib.finish().expect("zlib"))
        .header("content-encoding", "deflate")
        .send(addr)
        .await;
    assert_eq!(deflated.status, 200, "{}", deflated.text());
    let got = sdk_client(&ddb.endpoint(0))
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .expect("Scan");
    let mut ids: Vec<_> = got
        .items()
        .iter()
        .filter_map(|i| i.get("ItemID").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["gz", "zlib"]);
    let forwarded = region.recorded_op("PutItem");
    assert!(
        forwarded
            .iter()
            .all(|r| r.header("content-encoding").is_none())
    );
    assert!(forwarded.iter().all(|r| r.body.starts_with(b"{")));

    // PutItems only: the sidecar learns the table's key schema on its own meanwhile.
    let before = region.recorded_op("PutItem").len();
    let whole = gzip(put("broken").as_bytes());
    for (case, body, encoding, status, error) in [
        (
            "truncated gzip",
            whole[..whole.len() - 1].to_vec(),
            "gzip",
            500,
            "#InternalFailure",
        ),
        (
            "plain JSON called gzip",
            put("broken").into_bytes(),
            "gzip",
            500,
            "#InternalFailure",
        ),
        ("empty gzip", Vec::new(), "gzip", 500, "#InternalFailure"),
        (
            "unknown coding",
            put("broken").into_bytes(),
            "br",
            500,
            "#InternalFailure",
        ),
        (
            "a 20 MiB bomb",
            gzip(format!("{{\"TableName\":\"{TABLE}\"{}}}", " ".repeat(20 << 20)).as_bytes()),
            "gzip",
            413,
            "#RequestEntityTooLargeException",
        ),
    ] {
        let response = RawRequest::new("PutItem", body)
            .header("content-encoding", encoding)
            .send(addr)
            .await;
        assert_eq!(response.status, status, "{case}: {}", response.text());
        assert!(
            response.error_type().ends_with(error),
            "{case}: {}",
            response.text()
        );
    }
    assert_eq!(
        region.recorded_op("PutItem").len(),
        before,
        "a refused body reached the region"
    );
}

/// The region's `Server` header (and the rest it sent) reaches the client unchanged, and
/// `GET /` gets the region's own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regions_headers_pass_through() {
    let (ddb, region, sidecar) = setup(SidecarConfig::new()).await;
    let ddb_addr = std::net::SocketAddr::from(([127, 0, 0, 1], ddb.port(0)));
    let direct = RawRequest::new("ListTables", "{}").send(ddb_addr).await;
    let through = RawRequest::new("ListTables", "{}")
        .send(sidecar.listen_addr())
        .await;
    let server = direct
        .header("server")
        .expect("DynamoDB Local's Server header");
    assert_eq!(through.header("server"), Some(server));
    assert!(through.header("x-amzn-requestid").is_some());
    assert!(through.header("date").is_some());
    assert_eq!(
        through.header("content-type"),
        direct.header("content-type")
    );
    // `GET /` is the region's answer too: DynamoDB Local refuses it, DynamoDB answers it.
    let local = support::get(ddb_addr, "/").await;
    let root = support::get(sidecar.listen_addr(), "/").await;
    assert_eq!(root.status, local.status, "{}", root.text());
    assert_eq!(root.header("server"), Some(server));
    // DynamoDB's own answer is text, not an answer the sidecar passes on: it answers as
    // DynamoDB does.
    region.set_mode(Mode::NotJson).await;
    let own = support::get(sidecar.listen_addr(), "/").await;
    assert_eq!(
        (own.status, own.text().as_str()),
        (200, "healthy: globalscale")
    );
}

/// A CORS preflight is answered as DynamoDB answers it, the origin allowed only when listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_are_answered_and_origins_allowed_only_when_listed() {
    let config =
        SidecarConfig::new().section("[cors]\nallowed_origins = [\"https://app.example.com\"]");
    let (_ddb, region, sidecar) = setup(config).await;
    let addr = sidecar.listen_addr();
    let preflight = |origin: &str| {
        RawRequest::without_target(Vec::new())
            .unsigned()
            .method(http::Method::OPTIONS)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-amz-target,x-amz-date",
            )
    };
    let allowed = preflight("https://app.example.com").send(addr).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        allowed.header("access-control-allow-headers"),
        Some("authorization,content-type,x-amz-target,x-amz-date")
    );
    assert_eq!(allowed.header("access-control-max-age"), Some("1728000"));
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let other = preflight("https://evil.example").send(addr).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);

    let call = RawRequest::new("ListTables", "{}")
        .header("origin", "https://app.example.com")
        .send(addr)
        .await;
    assert_eq!(call.status, 200, "{}", call.text());
    assert_eq!(
        call.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(call.header("access-control-expose-headers").is_some());
    assert!(region.recorded().iter().all(|r| r.method != "OPTIONS"));
}

/// A request the region answers with a 500 every time is sent twice, not six times, and its
/// failures (its resends by the client too) never eject the only region; failures of
/// different requests still do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_request_is_sent_twice_and_never_ejects_the_region() {
    let config = SidecarConfig::new().section(
        "[routing]\nprobe_interval_ms = 600000\neject_after_failures = 3\nmax_attempts = 6",
    );
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar = Sidecar::start(&config.region("us-east-1", &region.endpoint())).await;
    // Only the poison request fails: the sidecar's own requests (learning the table,
    // probes) and the others are served.
    region.set_mode(Mode::StatusWhen(500, "poison-item")).await;
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    let get = |id: &str| {
        client
            .get_item()
            .table_name(TABLE)
            .key("ItemID", AttributeValue::S(id.into()))
            .key("Category", AttributeValue::S("x".into()))
            .send()
    };
    let healthy = || async {
        metric(
            sidecar.admin_addr(),
            "globalscale_region_healthy",
            &[("region", "us-east-1")],
        )
        .await
    };
    // Error answers eject a region once it has been failing for a second (region health):
    // the poison request is sent for longer than that.
    let started = std::time::Instant::now();
    let mut rounds = 0;
    while rounds < 5 || started.elapsed() < std::time::Duration::from_millis(1_500) {
        rounds += 1;
        let poisoned = || {
            region
                .recorded_op("GetItem")
                .iter()
                .filter(|r| String::from_utf8_lossy(&r.body).contains("poison-item"))
                .count()
        };
        let before = poisoned();
        let error = get("poison-item")
            .await
            .expect_err("the region answers 500");
        assert_eq!(
            error.raw_response().map(|r| r.status().as_u16()),
            Some(500),
            "{error:?}"
        );
        let sent = poisoned() - before;
        assert_eq!(sent, 2, "round {rounds}: attempts sent");
        assert_eq!(
            healthy().await,
            Some(1.0),
            "round {rounds}: the region was ejected; it received {:?}",
            region
                .recorded()
                .iter()
                .map(|r| r.operation().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        );
    }
    // Different requests failing are the region's fault: it is ejected in time.
    region.set_mode(Mode::Status(500)).await;
    support::within("the region's ejection", async {
        for i in 0.. {
            let _ = get(&format!("other{i}")).await;
            if healthy().await == Some(0.0) {
                break;
            }
        }
    })
    .await;
    let poison = metric(
        sidecar.admin_addr(),
        "globalscale_poison_requests_total",
        &[],
    )
    .await;
    assert!(poison.is_some_and(|n| n >= 5.0), "{poison:?}");
    let repeated = metric(
        sidecar.admin_addr(),
        "globalscale_repeated_server_errors_total",
        &[],
    )
    .await;
    assert!(
        repeated.is_some_and(|n| n >= f64::from(rounds)),
        "{repeated:?}"
    );
}

/// A request both regions answer with the same 500 every time is sent twice in all, once to
/// each region (the second alike answer ends it), and ejects neither region however long it
/// goes on; other requests are served meanwhile, and different requests failing still eject
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_request_across_two_regions_is_sent_twice_and_ejects_neither() {
    let regions = TwoRegions::start().await;
    for ddb in [&regions.home_ddb, &regions.other_ddb] {
        let direct = sdk_client(&ddb.endpoint(0));
        create_global_catalog(&direct).await;
        direct
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item("fine", "x", &[])))
            .send()
            .await
            .expect("PutItem in the region");
    }
    // The default retry budget (500 tokens): a poison request's one retry is paid back, so
    // however many rounds the test sends, the retries never run dry.
    let config = regions.config(SidecarConfig::new().section(
        "[routing]\nprobe_interval_ms = 600000\neject_after_failures = 3\nmax_attempts = 6",
    ));
    let sidecar = Sidecar::start(&config).await;
    let fronts = [("us-east-1", &regions.home), ("ddblocal", &regions.other)];
    for (_, front) in fronts {
        front.set_mode(Mode::StatusWhen(500, "poison-item")).await;
    }
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    let get = |id: &str| {
        client
            .get_item()
            .table_name(TABLE)
            .key("ItemID", AttributeValue::S(id.into()))
            .key("Category", AttributeValue::S("x".into()))
            .send()
    };
    let healthy = || async {
        let mut states = Vec::new();
        for (name, _) in fronts {
            let state = metric(
                sidecar.admin_addr(),
                "globalscale_region_healthy",
                &[("region", name)],
            )
            .await;
            states.push(state);
        }
        states
    };
    let poisoned = |front: &RegionFixture| {
        front
            .recorded_op("GetItem")
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("poison-item"))
            .count()
    };
    // Longer than error answers take to eject a region (region health), were they counted.
    let started = std::time::Instant::now();
    // More rounds than the default budget's 500 tokens could pay for if the retries were
    // not paid back (5 tokens each).
    let mut rounds = 0;
    while rounds < 120 || started.elapsed() < std::time::Duration::from_millis(1_500) {
        rounds += 1;
        let before = fronts.map(|(_, front)| poisoned(front));
        let error = get("poison-item")
            .await
            .expect_err("both regions answer 500");
        assert_eq!(
            error.raw_response().map(|r| r.status().as_u16()),
            Some(500),
            "{error:?}"
        );
        let sent = fronts.map(|(_, front)| poisoned(front));
        assert_eq!(
            [sent[0] - before[0], sent[1] - before[1]],
            [1, 1],
            "round {rounds}: attempts sent to home and to ddblocal"
        );
        assert_eq!(
            healthy().await,
            [Some(1.0), Some(1.0)],
            "round {rounds}: a region was ejected"
        );
    }
    let fine = get("fine").await.expect("another request is served");
    assert!(fine.item().is_some(), "{fine:?}");
    let poison = metric(
        sidecar.admin_addr(),
        "globalscale_poison_requests_total",
        &[],
    )
    .await;
    assert_eq!(poison, Some(f64::from(rounds)));

    // Different requests failing are the regions' fault: both are ejected in time.
    for (_, front) in fronts {
        front.set_mode(Mode::Status(500)).await;
    }
    support::within("both regions' ejection", async {
        for i in 0.. {
            let _ = get(&format!("other{i}")).await;
            if healthy().await == [Some(0.0), Some(0.0)] {
                break;
            }
        }
    })
    .await;
}

/// A versioned write the region answers with a 500 every time, retried by the SDK: each retry
/// reaches the region with a fresh write id of the sidecar's, yet it is the client's same
/// request, and never ejects the only region however often the SDK retries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_retries_of_a_poison_versioned_write_never_eject_the_region() {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    let config = SidecarConfig::new()
        .table_line("version_attribute = \"Version\"")
        .section("[routing]\nprobe_interval_ms = 600000\neject_after_failures = 3");
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar = Sidecar::start(&config.region("us-east-1", &region.endpoint())).await;
    region.set_mode(Mode::StatusWhen(500, "poison-item")).await;
    let retries = RetryConfig::standard()
        .with_max_attempts(4)
        .with_initial_backoff(std::time::Duration::from_millis(10));
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| b.retry_config(retries));
    let healthy = || async {
        metric(
            sidecar.admin_addr(),
            "globalscale_region_healthy",
            &[("region", "us-east-1")],
        )
        .await
    };
    // Long enough for error answers to eject the region, were they counted (region health).
    let started = std::time::Instant::now();
    let mut rounds = 0;
    while rounds < 5 || started.elapsed() < std::time::Duration::from_millis(1_500) {
        rounds += 1;
        let error = client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item("poison-item", "x", &[("Name", "n")])))
            .send()
            .await
            .expect_err("the region answers 500");
        assert_eq!(
            error.raw_response().map(|r| r.status().as_u16()),
            Some(500),
            "{error:?}"
        );
        assert_eq!(
            healthy().await,
            Some(1.0),
            "round {rounds}: the region was ejected"
        );
    }
    // What makes the rule matter: the SDK retried, and no two of its attempts reached the
    // region alike.
    let write_ids: std::collections::HashSet<String> = region
        .recorded_op("PutItem")
        .iter()
        .filter_map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            let id = body.pointer("/Item/__globalscale_write/S")?;
            id.as_str().map(str::to_owned)
        })
        .collect();
    assert!(
        write_ids.len() >= 4 * rounds,
        "{} write ids in {rounds} rounds of 4 SDK attempts",
        write_ids.len()
    );
}

/// With `[auth] mode = "sigv4"`, the streams SDK's signature is checked like any other, and
/// a client's allow-list holds for streams: it lists and reads the streams of its tables
/// only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_allow_list_holds_for_streams() {
    let ddb = DynamoLocal::single().await;
    for table in ["Orders1", "Events"] {
        create_streamed_table(&ddb, table).await;
        sdk_client(&ddb.endpoint(0))
            .put_item()
            .table_name(table)
            .set_item(Some(item("o1", "x", &[])))
            .send()
            .await
            .expect("PutItem in the region");
    }
    let clients = format!(
        "[auth]\nmode = \"sigv4\"\n\n[[clients]]\nname = \"app\"\naccess_key_id = {:?}\nsecret_access_key = {:?}\ntables = [\"Orders*\"]",
        support::CLIENT_ACCESS_KEY_ID,
        support::CLIENT_SECRET
    );
    let (region, sidecar) = start(&ddb, SidecarConfig::new().section(&clients)).await;
    let streams = streams_client(&sidecar.endpoint());

    let listed = streams.list_streams().send().await.expect("ListStreams");
    let tables: Vec<_> = listed
        .streams()
        .iter()
        .filter_map(|s| s.table_name())
        .collect();
    assert_eq!(tables, ["Orders1"]);
    let records = records_of(&streams, "Orders1").await;
    assert_eq!(records.iter().map(stream_key).collect::<Vec<_>>(), ["o1"]);

    let events = streams_client(&ddb.endpoint(0))
        .list_streams()
        .table_name("Events")
        .send()
        .await
        .expect("ListStreams in the region")
        .streams()[0]
        .stream_arn()
        .expect("StreamArn")
        .to_owned();
    let before = region.recorded_op("GetShardIterator").len();
    let refused = streams
        .get_shard_iterator()
        .stream_arn(&events)
        .shard_id("shardId-00000000000000000000-00000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect_err("a stream off the allow-list");
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDeniedException"),
        "{refused:?}"
    );
    assert_eq!(region.recorded_op("GetShardIterator").len(), before);
    // Unsigned, a streams request is refused like any other.
    let unsigned = RawRequest::with_target("DynamoDBStreams_20120810.ListStreams", "{}")
        .unsigned()
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(unsigned.status, 400, "{}", unsigned.text());
    assert!(
        unsigned
            .error_type()
            .ends_with("#MissingAuthenticationTokenException")
    );
}
