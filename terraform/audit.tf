# The audit table's resource-based policy, on the table and on every replica
# (DynamoDB does not replicate resource policies). IAM policies bind only the
# roles they are attached to; this binds every principal of every account,
# administrators included, so that the audit trail does not depend on nobody
# ever holding dynamodb:* on "*". It only denies: access itself still comes
# from each principal's IAM policies.
#
# It cannot do better than IAM at telling a batch's puts from its deletes, or
# a new record from an overwrite (README.md). What it adds: nobody but the
# sidecar role writes records at all, nobody changes or deletes one through
# the single-item and PartiQL calls, and only the identities that run
# Terraform change the table.
#
# Exempt from every statement: audit_break_glass_principals, DynamoDB's
# service-linked roles and AWS services acting as themselves. Denying the
# replication role its actions stops replication, and a replica left
# REPLICATION_NOT_AUTHORIZED for 20 hours becomes a single-region table;
# auto scaling calls UpdateTable under PROVISIONED.
#
# Terraform cannot lock itself out: the identity running the apply is always
# among the table's administrators, and DynamoDB refuses a PutResourcePolicy
# that would take from the caller its own right to change the policy
# (confirm_remove_self_resource_access stays false). Another identity can be
# locked out by the policy this one wrote, so every identity that applies
# belongs in audit_admin_principals. The account root can always delete the
# policy, whatever it says.

# Resolving the session to its role takes iam:GetRole, hence only when the
# policy is wanted.
data "aws_iam_session_context" "current" {
  count = var.audit_resource_policy ? 1 : 0

  arn = data.aws_caller_identity.current.arn
}

locals {
  audit_service_roles = [
    "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/replication.dynamodb.amazonaws.com/AWSServiceRoleForDynamoDBReplication",
    "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable",
  ]

  # The role ARN behind the apply's session (with its path, as
  # aws:PrincipalArn has it), or the user ARN when no role is involved.
  terraform_principal = one(data.aws_iam_session_context.current[*].issuer_arn)

  audit_record_writers = distinct(concat([aws_iam_role.sidecar.arn], var.audit_break_glass_principals, local.audit_service_roles))
  audit_record_editors = distinct(concat(var.audit_break_glass_principals, local.audit_service_roles))
  audit_table_admins = distinct(concat(
    compact([local.terraform_principal]),
    var.audit_admin_principals,
    var.audit_break_glass_principals,
    local.audit_service_roles,
  ))

  # A resource policy speaks only of the table it is attached to, so the
  # actions on backups (DeleteBackup, RestoreTableFromBackup) have no place in
  # it; a restore or an export *from* the table does, since either puts the
  # records where this policy no longer applies.
  audit_table_policy_actions = sort(concat(
    tolist(setsubtract(local.audit_table_changes, ["dynamodb:DeleteBackup", "dynamodb:RestoreTableFromBackup"])),
    ["dynamodb:ExportTableToPointInTime"],
  ))
}

data "aws_iam_policy_document" "audit_table" {
  for_each = var.audit_resource_policy ? toset(local.all_regions) : toset([])

  statement {
    sid       = "OnlyTheSidecarAddsRecords"
    effect    = "Deny"
    actions   = ["dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert"]
    resources = ["arn:${local.partition}:dynamodb:${each.key}:${local.account_id}:table/${local.audit_name}"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = local.audit_record_writers
    }

    condition {
      test     = "BoolIfExists"
      variable = "aws:PrincipalIsAWSService"
      values   = ["false"]
    }
  }

  statement {
    sid       = "RecordsNeverChange"
    effect    = "Deny"
    actions   = ["dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"]
    resources = ["arn:${local.partition}:dynamodb:${each.key}:${local.account_id}:table/${local.audit_name}"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = local.audit_record_editors
    }

    condition {
      test     = "BoolIfExists"
      variable = "aws:PrincipalIsAWSService"
      values   = ["false"]
    }
  }

  statement {
    sid       = "TableChangesOnlyByItsAdministrators"
    effect    = "Deny"
    actions   = local.audit_table_policy_actions
    resources = ["arn:${local.partition}:dynamodb:${each.key}:${local.account_id}:table/${local.audit_name}"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = local.audit_table_admins
    }

    condition {
      test     = "BoolIfExists"
      variable = "aws:PrincipalIsAWSService"
      values   = ["false"]
    }
  }
}

# The policies are minified because DynamoDB counts whitespace against a
# resource policy's 20 KB.
# The home region's table, then each replica: DynamoDB does not replicate
# resource policies. Left false, DynamoDB refuses a policy that would take
# from the identity applying it the right to change it again.
resource "aws_dynamodb_resource_policy" "audit" {
  count = var.audit_resource_policy ? 1 : 0

  resource_arn                        = local.table["audit"].arn
  policy                              = data.aws_iam_policy_document.audit_table[var.home_region].minified_json
  confirm_remove_self_resource_access = false
}

resource "aws_dynamodb_resource_policy" "audit_replica" {
  for_each = var.audit_resource_policy ? toset(var.replica_regions) : toset([])

  region                              = each.key
  resource_arn                        = local.replicas["audit"][each.key].arn
  policy                              = data.aws_iam_policy_document.audit_table[each.key].minified_json
  confirm_remove_self_resource_access = false
}
