# One IAM user per node. Its policy is rendered from node-policy.json.tftpl, the one template that
# deploy/node_policy.py renders for nodes set up without Terraform and that the tests check.
#
# Users with access keys rather than roles: a node is any Linux machine, inside AWS or not, and a
# role needs something to assume it from (an instance profile, IAM Roles Anywhere and its PKI). The
# agent takes boto3's credential chain, so attaching the same rendered policy to a role instead
# works as well where there is one.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

resource "aws_iam_user" "node" {
  for_each = var.nodes
  name     = "hoshino-${each.key}"

  #checkov:skip=CKV_AWS_273:A node is a machine, not a person: no one signs in through SSO to carry packets. Each node has its own user and access key, and nothing more.
}

resource "aws_iam_user_policy" "node" {
  for_each = var.nodes
  name     = "hoshino-node"
  user     = aws_iam_user.node[each.key].name
  policy = templatefile("${path.module}/node-policy.json.tftpl", {
    partition         = data.aws_partition.current.partition
    region            = data.aws_region.current.region
    account_id        = data.aws_caller_identity.current.account_id
    bucket            = aws_s3_bucket.hoshino.bucket
    key_prefix        = var.key_prefix
    inbox             = "${var.key_prefix}${each.value}/"
    queue_name_prefix = local.queue_name_prefix
    queue_name        = aws_sqs_queue.doorbell[each.key].name
  })

  #checkov:skip=CKV_AWS_40:Each node's policy names its own inbox and queue, so no two users could share it through a group; one inline policy per user is the least privilege here.
}

resource "aws_iam_access_key" "node" {
  for_each = var.nodes
  user     = aws_iam_user.node[each.key].name
}
