//! DynamoDB Streams through the sidecar (`X-Amz-Target: DynamoDBStreams_20120810.*`):
//! ListStreams, DescribeStream, GetShardIterator and GetRecords, sent to the streams endpoint
//! of the region the stream belongs to, signed for it, under the policies of the stream's
//! table. This module holds the pure half: which operation, which stream, table and region
//! a request names, the policy checks, and the answer as the client may see it ([`records`]);
//! `proxy::streams` sends it.
//!
//! A stream is one replica's: its ARN (and every shard iterator, which starts with it) names
//! the region, and the request goes there or nowhere: another region's replica has other
//! streams, so there is no failover. A stream ARN naming a region the config does not list
//! (DynamoDB Local names its region `ddblocal`) goes to the home region. ListStreams names
//! no stream and goes to the first region routing would choose, as does an ARN the sidecar
//! cannot read, where no policy could apply to it.

use serde_json::{Map, Value};

use crate::error::ProxyError;

pub mod provenance;
pub mod records;

/// The versioned prefix every DynamoDB Streams target carries.
pub const TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";

/// A DynamoDB Streams operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamsOperation {
    ListStreams,
    DescribeStream,
    GetShardIterator,
    GetRecords,
}

impl StreamsOperation {
    /// The operation an `X-Amz-Target` names, if it is a streams target; `Err` for a streams
    /// target naming no operation of the API.
    pub fn from_target(target: &str) -> Option<Result<Self, ProxyError>> {
        let name = target.strip_prefix(TARGET_PREFIX)?;
        Some(match name {
            "ListStreams" => Ok(Self::ListStreams),
            "DescribeStream" => Ok(Self::DescribeStream),
            "GetShardIterator" => Ok(Self::GetShardIterator),
            "GetRecords" => Ok(Self::GetRecords),
            _ => Err(ProxyError::UnknownOperation(format!(
                "{TARGET_PREFIX}{name} is not an operation of DynamoDB Streams"
            ))),
        })
    }

    /// Its `X-Amz-Target`.
    pub fn target(self) -> &'static str {
        match self {
            Self::ListStreams => "DynamoDBStreams_20120810.ListStreams",
            Self::DescribeStream => "DynamoDBStreams_20120810.DescribeStream",
            Self::GetShardIterator => "DynamoDBStreams_20120810.GetShardIterator",
            Self::GetRecords => "DynamoDBStreams_20120810.GetRecords",
        }
    }

    /// The operation's name, also its metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ListStreams => "ListStreams",
            Self::DescribeStream => "DescribeStream",
            Self::GetShardIterator => "GetShardIterator",
            Self::GetRecords => "GetRecords",
        }
    }
}

/// What a streams request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One stream, by its ARN (or a shard iterator that starts with it).
    Stream {
        arn: String,
        /// The region its ARN names.
        region: String,
        table: String,
    },
    /// ListStreams: every stream of the region, or of one table.
    Listing { table: Option<String> },
    /// A stream ARN or shard iterator the sidecar cannot read, sent on only where no policy
    /// could apply ([`Guard::unread_allowed`]): the region judges it.
    Unread,
}

impl Subject {
    /// The table the request reads, when it names one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Self::Stream { table, .. } => Some(table),
            Self::Listing { table } => table.as_deref(),
            Self::Unread => None,
        }
    }
}

/// The subject of a request from its body; a body without what the operation needs is
/// refused here, before anything is sent, since without it no policy can be checked.
pub fn subject(
    operation: StreamsOperation,
    body: &Map<String, Value>,
) -> Result<Subject, ProxyError> {
    let field = |name: &str| -> Result<Option<&str>, ProxyError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ProxyError::Validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: \
                 Member must be a string",
                lower_first(name)
            ))),
        }
    };
    let required = |name: &str| -> Result<&str, ProxyError> {
        field(name)?.ok_or_else(|| {
            ProxyError::Validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy \
                 constraint: Member must not be null",
                lower_first(name)
            ))
        })
    };
    let arn = match operation {
        StreamsOperation::ListStreams => {
            let table = field("TableName")?.map(|t| crate::tables::table_of(t).to_owned());
            return Ok(Subject::Listing { table });
        }
        StreamsOperation::DescribeStream | StreamsOperation::GetShardIterator => {
            required("StreamArn")?
        }
        StreamsOperation::GetRecords => iterator_arn(required("ShardIterator")?),
    };
    let (region, table) = stream_arn(arn).ok_or_else(|| {
        ProxyError::Validation(format!(
            "Invalid StreamArn or ShardIterator: the sidecar cannot tell which table's stream \
             {arn:?} is (arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>)"
        ))
    })?;
    Ok(Subject::Stream {
        arn: arn.to_owned(),
        region: region.to_owned(),
        table: table.to_owned(),
    })
}

/// The stream ARN a shard iterator starts with (DynamoDB's iterators are
/// `<stream ARN>|<version>|<opaque>`).
pub fn iterator_arn(iterator: &str) -> &str {
    iterator.split('|').next().unwrap_or(iterator)
}

/// The region and table of `arn:<partition>:dynamodb:<region>:<account>:table/<t>/stream/<l>`.
pub fn stream_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if scheme != "arn" || service != "dynamodb" || region.is_empty() {
        return None;
    }
    let rest = resource.strip_prefix("table/")?;
    let (table, label) = rest.split_once("/stream/")?;
    let valid_table = (3..=255).contains(&table.len())
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (valid_table && !label.is_empty() && !label.contains('/')).then_some((region, table))
}

/// The policies a streams request meets: the audit table's stream is never shown, and a
/// client with an allow-list reads only the streams of its tables.
pub struct Guard<'a> {
    pub client: &'a str,
    pub audit_table: Option<&'a str>,
    pub allowed: Option<&'a crate::access::Allowed>,
}

impl Guard<'_> {
    /// Whether a request naming a stream the sidecar cannot read may go to the region: only
    /// when no policy could apply to whatever it names (no allow-list for the client, no
    /// audit table, no managed table), so that the region's own answer (DynamoDB Local's
    /// `ResourceNotFoundException`, DynamoDB's `ValidationException`) reaches the client.
    /// Otherwise it is refused: the check fails closed.
    pub fn unread_allowed(&self, managed_tables: bool) -> bool {
        self.allowed.is_none() && self.audit_table.is_none() && !managed_tables
    }

    /// Whether the stream of `table` may be shown to the client.
    pub fn shows(&self, table: &str) -> bool {
        Some(table) != self.audit_table && self.allowed.is_none_or(|a| a.allows(table))
    }

    /// Refuses a request for the stream of a table the client may not read.
    pub fn check(&self, operation: StreamsOperation, subject: &Subject) -> Result<(), ProxyError> {
        let Some(table) = subject.table() else {
            return Ok(());
        };
        if Some(table) == self.audit_table {
            return Err(ProxyError::AccessDenied(format!(
                "table {table} is this sidecar's audit trail: clients may not read its stream \
                 through the sidecar"
            )));
        }
        if !self.shows(table) {
            return Err(ProxyError::AccessDenied(format!(
                "client {} is not authorized to perform: dynamodb:{} on the stream of table \
                 {table}",
                self.client,
                operation.label()
            )));
        }
        Ok(())
    }
}

/// `StreamArn` → `streamArn`, as DynamoDB names members in validation messages.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

#[cfg(test)]
mod tests;
