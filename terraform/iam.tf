# What the sidecar may do, and who may be the sidecar.
#
# The sidecar forwards the calls of its application and appends audit
# records; by default it never creates, alters or deletes tables.
# Transactions need no actions of their own: IAM authorises
# TransactWriteItems and TransactGetItems through the item actions inside
# them (PutItem, UpdateItem, DeleteItem, GetItem and ConditionCheckItem).

locals {
  catalog_name = aws_dynamodb_table.this["catalog"].name
  audit_name   = aws_dynamodb_table.this["audit"].name

  # The sidecar fails over between regions, so it needs the same rights on
  # every replica. Table ARNs differ only by region.
  catalog_arns = flatten([
    for region in local.all_regions : [
      "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.catalog_name}",
      "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.catalog_name}/index/*",
    ]
  ])

  audit_arns = [
    for region in local.all_regions :
    "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${local.audit_name}"
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
  # delete or read, so a compromised pod cannot mine history. The shipper
  # stores records with BatchWriteItem (25 per request, UnprocessedItems
  # retried), which IAM cannot limit to puts: it carries deletes too. What
  # keeps a deleted or overwritten record recoverable is point-in-time
  # recovery and the table's stream, not IAM (README.md). The ReturnValues
  # condition keeps a PutItem from returning the record it replaced (ALL_OLD),
  # which would be a read.
  statement {
    sid    = "AuditAppend"
    effect = "Allow"
    actions = [
      "dynamodb:PutItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:DescribeTable",
    ]
    resources = local.audit_arns

    condition {
      test     = "StringEqualsIfExists"
      variable = "dynamodb:ReturnValues"
      values   = ["NONE"]
    }
  }

  # An explicit deny outlives any allow attached to the role later (a
  # managed policy such as AmazonDynamoDBFullAccess, a wildcard statement),
  # so the single-item ways to change or remove an audit record stay closed.
  # Transactions are covered too: IAM checks each item action inside them.
  statement {
    sid    = "AuditNeverChangesOrDeletes"
    effect = "Deny"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:UpdateItem",
      "dynamodb:PartiQLUpdate",
      "dynamodb:PartiQLDelete",
    ]
    resources = local.audit_arns
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

  # DynamoDB uses the table key on the caller's behalf; the ViaService
  # condition keeps these rights from being usable outside DynamoDB.
  statement {
    sid    = "TableKeyThroughDynamoDB"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:DescribeKey",
    ]
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
