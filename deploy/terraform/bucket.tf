# A bucket for Hoshino and one IAM user per node, as the original experiment set them up, with the
# two lessons it learned: object actions need the "bucket/*" resource, not only the bucket, and a
# lifecycle rule sweeps up what a vanished node left behind (one day is S3's smallest granularity).

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "bucket_name" {
  description = "Name of the bucket that carries the packets."
  type        = string
}

variable "nodes" {
  description = "One IAM user is made for each node name."
  type        = set(string)
}

resource "aws_s3_bucket" "hoshino" {
  bucket = var.bucket_name
}

resource "aws_s3_bucket_lifecycle_configuration" "hoshino" {
  bucket = aws_s3_bucket.hoshino.id

  rule {
    id     = "auto-expire"
    status = "Enabled"

    filter {}

    expiration {
      days = 1
    }
  }
}

data "aws_iam_policy_document" "node" {
  statement {
    sid       = "ListInboxes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.hoshino.arn]
  }

  statement {
    sid       = "MovePackets"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.hoshino.arn}/*"] # every object in the bucket
  }
}

resource "aws_iam_user" "node" {
  for_each = var.nodes
  name     = "hoshino-${each.key}"
}

resource "aws_iam_user_policy" "node" {
  for_each = var.nodes
  name     = "hoshino"
  user     = aws_iam_user.node[each.key].name
  policy   = data.aws_iam_policy_document.node.json
}

resource "aws_iam_access_key" "node" {
  for_each = var.nodes
  user     = aws_iam_user.node[each.key].name
}

output "bucket" {
  value = aws_s3_bucket.hoshino.bucket
}

output "credentials" {
  description = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for each node."
  value = {
    for name, key in aws_iam_access_key.node : name => { id = key.id, secret = key.secret }
  }
  sensitive = true
}
