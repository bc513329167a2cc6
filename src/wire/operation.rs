//! `X-Amz-Target: DynamoDB_20120810.<Op>` → [`Operation`].

/// The versioned prefix every DynamoDB JSON target carries.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// A DynamoDB operation, as named by the request's `X-Amz-Target`.
        ///
        /// Operations the sidecar does not know are kept by name in [`Operation::Other`] and
        /// forwarded unchanged; the metric label for them is `other` so label sets stay bounded.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($name,)*
            /// A well-formed target naming an operation this build does not know.
            Other(String),
        }

        impl Operation {
            /// Parses the operation name (the part after [`TARGET_PREFIX`]).
            pub fn from_name(name: &str) -> Self {
                match name {
                    $(stringify!($name) => Self::$name,)*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The operation's name as DynamoDB spells it.
            pub fn name(&self) -> &str {
                match self {
                    $(Self::$name => stringify!($name),)*
                    Self::Other(name) => name,
                }
            }

            /// A bounded metric label: the name for known operations, `other` otherwise.
            pub fn label(&self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                    Self::Other(_) => "other",
                }
            }
        }
    };
}

operations!(
    // Data plane.
    GetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
    Scan,
    BatchGetItem,
    BatchWriteItem,
    TransactGetItems,
    TransactWriteItems,
    ExecuteStatement,
    BatchExecuteStatement,
    ExecuteTransaction,
    // Control plane.
    CreateTable,
    DeleteTable,
    DescribeTable,
    ListTables,
    UpdateTable,
    DescribeTimeToLive,
    UpdateTimeToLive,
    TagResource,
    UntagResource,
    ListTagsOfResource,
    DescribeLimits,
    DescribeEndpoints,
    DescribeContinuousBackups,
    UpdateContinuousBackups,
    CreateBackup,
    DeleteBackup,
    DescribeBackup,
    ListBackups,
    RestoreTableFromBackup,
    RestoreTableToPointInTime,
    CreateGlobalTable,
    DescribeGlobalTable,
    DescribeGlobalTableSettings,
    ListGlobalTables,
    UpdateGlobalTable,
    UpdateGlobalTableSettings,
    DescribeTableReplicaAutoScaling,
    UpdateTableReplicaAutoScaling,
    DescribeContributorInsights,
    ListContributorInsights,
    UpdateContributorInsights,
    DescribeKinesisStreamingDestination,
    EnableKinesisStreamingDestination,
    DisableKinesisStreamingDestination,
    UpdateKinesisStreamingDestination,
    ExportTableToPointInTime,
    DescribeExport,
    ListExports,
    ImportTable,
    DescribeImport,
    ListImports,
    GetResourcePolicy,
    PutResourcePolicy,
    DeleteResourcePolicy,
);

impl Operation {
    /// Parses a full `X-Amz-Target` value; `None` when it does not carry DynamoDB's prefix
    /// or names nothing.
    pub fn from_target(target: &str) -> Option<Self> {
        let name = target.strip_prefix(TARGET_PREFIX)?;
        let well_formed =
            !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric());
        well_formed.then(|| Self::from_name(name))
    }

    /// Whether the operation is PartiQL, whose statements name their tables in text.
    pub fn is_partiql(&self) -> bool {
        matches!(
            self,
            Self::ExecuteStatement | Self::BatchExecuteStatement | Self::ExecuteTransaction
        )
    }

    /// Whether the operation works on the items of one table, named by its top-level
    /// `TableName`, whose keys and items sit at the top level of request and answer.
    pub fn is_single_table(&self) -> bool {
        matches!(
            self,
            Self::GetItem
                | Self::PutItem
                | Self::UpdateItem
                | Self::DeleteItem
                | Self::Query
                | Self::Scan
        )
    }

    /// Whether the operation only reads: a read may always be sent again.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::GetItem
                | Self::Query
                | Self::Scan
                | Self::BatchGetItem
                | Self::TransactGetItems
                | Self::DescribeTable
                | Self::ListTables
                | Self::DescribeTimeToLive
                | Self::ListTagsOfResource
                | Self::DescribeLimits
                | Self::DescribeEndpoints
                | Self::DescribeContinuousBackups
                | Self::DescribeBackup
                | Self::ListBackups
                | Self::DescribeGlobalTable
                | Self::DescribeGlobalTableSettings
                | Self::ListGlobalTables
                | Self::DescribeTableReplicaAutoScaling
                | Self::DescribeContributorInsights
                | Self::ListContributorInsights
                | Self::DescribeKinesisStreamingDestination
                | Self::DescribeExport
                | Self::ListExports
                | Self::DescribeImport
                | Self::ListImports
                | Self::GetResourcePolicy
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Operation;

    #[test]
    fn parses_known_and_unknown_targets() {
        assert_eq!(
            Operation::from_target("DynamoDB_20120810.PutItem"),
            Some(Operation::PutItem)
        );
        let other = Operation::from_target("DynamoDB_20120810.FrobnicateTable").unwrap();
        assert_eq!(other.name(), "FrobnicateTable");
        assert_eq!(other.label(), "other");
    }

    #[test]
    fn rejects_foreign_or_empty_targets() {
        assert_eq!(
            Operation::from_target("DynamoDBStreams_20120810.GetRecords"),
            None
        );
        assert_eq!(Operation::from_target("DynamoDB_20120810."), None);
        assert_eq!(Operation::from_target("DynamoDB_20120810.Put Item"), None);
        assert_eq!(Operation::from_target(""), None);
    }

    #[test]
    fn reads_are_reads() {
        assert!(Operation::Query.is_read());
        assert!(!Operation::UpdateItem.is_read());
        assert!(!Operation::Other("X".into()).is_read());
    }
}
