# What the sidecar and the auditor may do, and who may be either. The audit
# table's own resource policy, which binds every principal, is in audit.tf.
#
# The sidecar forwards the calls of its application and appends audit
# records; by default it never creates, alters or deletes tables.
# Transactions need no actions of their own: IAM authorises
# TransactWriteItems and TransactGetItems through the item actions inside
# them (PutItem, UpdateItem, DeleteItem, GetItem and ConditionCheckItem).

locals {
  catalog_name = local.table["catalog"].name
  audit_name   = local.table["audit"].name

  # The sidecar fails over between regions, so it needs the same rights on
  # every replica. Table ARNs differ only by region.
  catalog_arns = flatten([
    for region in local.all_regions : [
      "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.catalog_name}",
      "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.catalog_name}/index/*",
    ]
  ])

  # A replica's stream belongs to its region; the sidecar forwards a stream
  # request to the region its ARN names (docs/src/transparency.md, "DynamoDB
  # Streams"). The "/" after the name keeps the audit table's streams
  # ("<catalog>-audit/stream/...") out of this pattern.
  catalog_stream_arns = [
    for region in local.all_regions :
    "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.catalog_name}/stream/*"
  ]

  audit_arns = [
    for region in local.all_regions :
    "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.audit_name}"
  ]

  # Denies name every region, not only today's: a replica added later, or a
  # table of the same name restored in another region, is covered before
  # anyone edits this file. The second ARN covers what hangs off the table:
  # its streams (GetRecords reads the old image of every change), its
  # backups and exports.
  audit_everywhere = [
    "arn:${local.partition}:dynamodb:*:${local.account_id}:table/${local.audit_name}",
    "arn:${local.partition}:dynamodb:*:${local.account_id}:table/${local.audit_name}/*",
  ]

  # What would change or remove a stored record. PartiQLInsert cannot
  # overwrite (an INSERT of an existing key fails), but the sidecar never
  # sends PartiQL to the audit table, so that path stays closed too.
  audit_record_changes = [
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
  ]

  # What reads records, directly or by copying the table somewhere readable.
  # ConditionCheckItem answers whether an item exists, which is a read too.
  audit_reads = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PartiQLSelect",
    "dynamodb:DescribeStream",
    "dynamodb:GetShardIterator",
    "dynamodb:GetRecords",
    "dynamodb:ExportTableToPointInTime",
  ]

  # What would remove the table, a replica or the safety nets around them
  # (deletion protection and streams are UpdateTable settings, PITR is
  # UpdateContinuousBackups), change who may do the rest (the resource
  # policy), put other records in its place (a restore into its name once
  # it is gone), or send every record elsewhere (a Kinesis destination).
  # Tags are here because tag-based policies elsewhere may key on them.
  audit_table_changes = [
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:PutResourcePolicy",
    "dynamodb:DeleteResourcePolicy",
    "dynamodb:TagResource",
    "dynamodb:UntagResource",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:DeleteBackup",
    "dynamodb:CreateTableReplica",
    "dynamodb:DeleteTableReplica",
    "dynamodb:EnableKinesisStreamingDestination",
    "dynamodb:DisableKinesisStreamingDestination",
    "dynamodb:UpdateKinesisStreamingDestination",
  ]
}

data "aws_iam_policy_document" "sidecar" {
  # What applications may call through the sidecar on the catalog; anything
  # else comes back as AccessDeniedException. A variable, because that set
  # differs by application (README.md). The sidecar's own health probe is an
  # eventually consistent GetItem on each table it manages ([[tables]], the
  # catalog), which the default allows; it never reads the audit table.
  statement {
    sid       = "CatalogDataPlane"
    effect    = "Allow"
    actions   = var.sidecar_table_actions
    resources = local.catalog_arns
  }

  # The audit trail is append-only from the sidecar's side: puts, no update,
  # delete or read, so a compromised pod cannot mine history. These are the
  # only calls the sidecar makes to the audit table: the shipper's
  # BatchWriteItem (25 records per request, UnprocessedItems retried), a
  # PutItem for a record the spool could not take, and in atomic mode a Put
  # inside the application's TransactWriteItems, which IAM authorises as
  # PutItem. No DescribeTable: the sidecar learns key schemas only of the
  # tables it manages, and the audit table is not one of them.
  #
  # IAM cannot limit BatchWriteItem to puts: it is one action, and its
  # DeleteRequests need no DeleteItem permission. Nor can it keep a put from
  # replacing an existing record. README.md says what covers that instead.
  # The ReturnValues condition keeps a PutItem from returning the record it
  # replaced (ALL_OLD), which would be a read; BatchWriteItem has no
  # ReturnValues, hence IfExists.
  #
  # No dynamodb:LeadingKeys or dynamodb:Attributes condition: every real
  # record's ItemKey starts with the catalog's name and every record has the
  # same attribute names, so either condition would admit exactly what a
  # forged or overwriting record needs, and neither sees a batch's deletes.
  # They would only tie this policy to the record format in src/audit, so
  # that a new record attribute (issue 26's hash chain) would stop shipping
  # until Terraform caught up.
  statement {
    sid    = "AuditAppend"
    effect = "Allow"
    actions = [
      "dynamodb:PutItem",
      "dynamodb:BatchWriteItem",
    ]
    resources = local.audit_arns

    condition {
      test     = "StringEqualsIfExists"
      variable = "dynamodb:ReturnValues"
      values   = ["NONE"]
    }
  }

  # Explicit denies outlive any allow attached to the role later (a managed
  # policy such as AmazonDynamoDBFullAccess, a wildcard statement, a
  # sidecar_table_actions that someone points at "*"), so the ways to change,
  # read or remove audit records, other than the batch, stay closed.
  # Transactions are covered too: IAM checks each item action inside them.
  statement {
    sid       = "AuditRecordsNeverChange"
    effect    = "Deny"
    actions   = local.audit_record_changes
    resources = local.audit_everywhere
  }

  statement {
    sid       = "AuditNeverRead"
    effect    = "Deny"
    actions   = local.audit_reads
    resources = local.audit_everywhere
  }

  statement {
    sid       = "AuditTableNeverChanges"
    effect    = "Deny"
    actions   = local.audit_table_changes
    resources = local.audit_everywhere
  }

  # ListTables has no resource-level permissions: IAM only accepts "*" for
  # it. It reveals table names in the account, nothing of their contents; the
  # sidecar forwards it because SDK clients call it on start-up.
  statement {
    sid       = "NoResourceScope"
    effect    = "Allow"
    actions   = ["dynamodb:ListTables"]
    resources = ["*"]
  }

  # DynamoDB calls KMS with the caller's rights when it needs a table's key
  # (at first access, then every five minutes per connection), always with
  # the table's name and the account as encryption context. ViaService keeps
  # these rights from being usable outside DynamoDB; the context keeps them to
  # the two tables of this module, should the key ever encrypt another.
  statement {
    sid    = "TableKeyThroughDynamoDB"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
    ]
    resources = values(local.table_key_arns)

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.all_regions : "dynamodb.${region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:tableName"
      values   = [local.catalog_name, local.audit_name]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:subscriberId"
      values   = [local.account_id]
    }
  }

  # DescribeKey carries no encryption context, so it cannot share the
  # statement above.
  statement {
    sid       = "TableKeyMetadataThroughDynamoDB"
    effect    = "Allow"
    actions   = ["kms:DescribeKey"]
    resources = values(local.table_key_arns)

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.all_regions : "dynamodb.${region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "sidecar" {
  name        = "${var.name_prefix}-sidecar"
  description = "GlobalScale sidecar: data-plane access to ${local.catalog_name} and append-only access to ${local.audit_name} in ${join(", ", local.all_regions)}."
  policy      = data.aws_iam_policy_document.sidecar.json
}

# IRSA: the EKS pod identity webhook mounts a projected token for the
# annotated service account, and the AWS default credential chain in the
# sidecar exchanges it for this role. IAM is global, so one role serves the
# sidecars of every region; each cluster has its own OIDC issuer and gets its
# own statement. Only the one service account, and only tokens minted for
# STS, may assume the role.
data "aws_iam_policy_document" "sidecar_trust" {
  # The CI role of .github/workflows/aws.yml (ci.tf) assumes the sidecar role
  # for its load run, so that this role's policy is what AWS judges there.
  dynamic "statement" {
    for_each = local.ci ? [1] : []

    content {
      sid     = "GitHubActionsLoadRun"
      effect  = "Allow"
      actions = ["sts:AssumeRole", "sts:TagSession"]

      principals {
        type        = "AWS"
        identifiers = [aws_iam_role.ci[0].arn]
      }
    }
  }

  dynamic "statement" {
    for_each = var.eks_clusters

    content {
      sid     = "EksServiceAccount${statement.key}"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [statement.value.oidc_provider_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "${trimsuffix(trimprefix(statement.value.oidc_issuer_url, "https://"), "/")}:sub"
        values   = ["system:serviceaccount:${var.k8s_namespace}:${var.k8s_service_account}"]
      }

      condition {
        test     = "StringEquals"
        variable = "${trimsuffix(trimprefix(statement.value.oidc_issuer_url, "https://"), "/")}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "sidecar" {
  name                 = "${var.name_prefix}-sidecar"
  description          = "Assumed by the GlobalScale sidecar through IRSA (${var.k8s_namespace}/${var.k8s_service_account})."
  assume_role_policy   = data.aws_iam_policy_document.sidecar_trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "sidecar" {
  role       = aws_iam_role.sidecar.name
  policy_arn = aws_iam_policy.sidecar.arn
}

# The DynamoDB Streams API, which the sidecar forwards signed with its role
# (docs/src/transparency.md, "DynamoDB Streams"): a stream reader pointed at
# the sidecar (the streams SDK, a KCL adapter) reads the catalog's streams in
# every region. DescribeStream, GetShardIterator and GetRecords take the
# stream resource type, so they are scoped to the catalog's streams;
# ListStreams takes no resource type, so it is allowed on "*" (it returns
# stream ARNs, no records). GetRecords reads every change with its old image,
# so never on the audit table's stream: the sidecar refuses that stream to
# every client, and AuditNeverRead in the policy above denies the three reads
# on everything under the audit table, whatever policy of the role allows
# them. Stream records are under the table key, which TableKeyThroughDynamoDB
# covers with the catalog's encryption context (AWS KMS's DynamoDB guide: what
# it says of tables holds for their streams). Not in sidecar_table_actions:
# those are granted on table and index ARNs.
#
# A policy of its own, attached when sidecar_stream_reads is true: a managed
# policy holds at most 6,144 characters, the sidecar policy takes about 450 a
# region (it passes the limit at 8 regions), and a stream ARN per region here
# takes none of that room. The document has no dynamic blocks or count, so
# that checkov reads it: it skips a document built with dynamic blocks.
data "aws_iam_policy_document" "sidecar_streams" {
  statement {
    sid    = "CatalogStreamRead"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetShardIterator",
      "dynamodb:GetRecords",
    ]
    resources = local.catalog_stream_arns
  }

  statement {
    sid       = "StreamListing"
    effect    = "Allow"
    actions   = ["dynamodb:ListStreams"]
    resources = ["*"]
  }
}

# The description names no region: it is fixed at creation (a new one
# replaces the policy), and a region added later changes only the document.
resource "aws_iam_policy" "sidecar_streams" {
  count = var.sidecar_stream_reads ? 1 : 0

  name        = "${var.name_prefix}-sidecar-streams"
  description = "GlobalScale sidecar: reads of ${local.catalog_name}'s streams in every region of the list, for the DynamoDB Streams API it forwards."
  policy      = data.aws_iam_policy_document.sidecar_streams.json
}

resource "aws_iam_role_policy_attachment" "sidecar_streams" {
  count = var.sidecar_stream_reads ? 1 : 0

  role       = aws_iam_role.sidecar.name
  policy_arn = aws_iam_policy.sidecar_streams[0].arn
}

# The auditor: reads the audit trail, changes nothing. Who may assume it is a
# list of principals (auditor_trusted_principals); with none, there is no
# role, since a role nobody may assume is only something to misconfigure
# later. `globalscale audit history` run with this role's credentials reads an
# item's history with Query; the console and ad hoc checks use the rest.
locals {
  auditor_enabled = length(var.auditor_trusted_principals) > 0

  audit_stream_arns = [for arn in local.audit_arns : "${arn}/stream/*"]
}

data "aws_iam_policy_document" "auditor" {
  # PartiQL SELECT reads no more than Scan and Query already do, and it is
  # what the console's PartiQL editor sends.
  statement {
    sid    = "AuditRead"
    effect = "Allow"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:PartiQLSelect",
      "dynamodb:DescribeTable",
    ]
    resources = local.audit_arns
  }

  # The stream is where an overwrite or a removal shows, with the old image,
  # for 24 hours: the auditor's way to see a record change under it.
  statement {
    sid    = "AuditStreamRead"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetShardIterator",
      "dynamodb:GetRecords",
    ]
    resources = local.audit_stream_arns
  }

  # That the protections are in place is part of what an auditor checks:
  # point-in-time recovery, and the resource policy of each replica.
  statement {
    sid    = "AuditProtectionsVisible"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeContinuousBackups",
      "dynamodb:GetResourcePolicy",
    ]
    resources = local.audit_arns
  }

  # An auditor who could edit what they audit would not be one. As for the
  # sidecar, explicit denies hold even if a broader policy is attached later.
  statement {
    sid    = "AuditorNeverWrites"
    effect = "Deny"
    actions = concat(
      ["dynamodb:PutItem", "dynamodb:BatchWriteItem"],
      local.audit_record_changes,
      local.audit_table_changes,
    )
    resources = local.audit_everywhere
  }

  # ListTables accepts only "*" and reveals names, not contents; the console
  # needs it to list tables at all.
  statement {
    sid       = "NoResourceScope"
    effect    = "Allow"
    actions   = ["dynamodb:ListTables"]
    resources = ["*"]
  }

  # Reads need the table key's Decrypt, through DynamoDB only and for the
  # audit table only: the catalog shares the key, and the auditor has no
  # business decrypting it even if some policy let them read it. The key
  # policy (kms.tf) delegates to IAM, so this statement is all it takes.
  statement {
    sid       = "AuditKeyThroughDynamoDB"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = values(local.table_key_arns)

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.all_regions : "dynamodb.${region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:tableName"
      values   = [local.audit_name]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:dynamodb:subscriberId"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "auditor_trust" {
  count = local.auditor_enabled ? 1 : 0

  statement {
    sid     = "Auditors"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = var.auditor_trusted_principals
    }
  }
}

resource "aws_iam_policy" "auditor" {
  count = local.auditor_enabled ? 1 : 0

  name        = "${var.name_prefix}-auditor"
  description = "GlobalScale auditor: read-only access to ${local.audit_name} and its streams in ${join(", ", local.all_regions)}."
  policy      = data.aws_iam_policy_document.auditor.json
}

resource "aws_iam_role" "auditor" {
  count = local.auditor_enabled ? 1 : 0

  name                 = "${var.name_prefix}-auditor"
  description          = "Read-only access to the GlobalScale audit trail (${local.audit_name})."
  assume_role_policy   = data.aws_iam_policy_document.auditor_trust[0].json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "auditor" {
  count = local.auditor_enabled ? 1 : 0

  role       = aws_iam_role.auditor[0].name
  policy_arn = aws_iam_policy.auditor[0].arn
}
