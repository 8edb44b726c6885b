# The bucket that carries the packets. Objects live milliseconds: a node deletes what it delivers.
# Two lessons of the original experiment stay: object actions need "bucket/*" resources, not only the
# bucket, and a lifecycle rule sweeps up what a vanished node left behind (one day is S3's smallest
# granularity).

resource "aws_s3_bucket" "hoshino" {
  bucket = var.bucket_name

  #checkov:skip=CKV_AWS_18:Access logs would write a log object for every packet's PUT, GET, LIST and DELETE: more requests than the tunnel itself. CloudTrail data events are the place for an audit.
  #checkov:skip=CKV_AWS_21:Versioning keeps every deleted packet as a noncurrent version; the bucket must hold nothing once a packet is delivered.
  #checkov:skip=CKV_AWS_144:Nothing here outlives a poll: replicating packets to another region doubles their cost and keeps copies no node deletes.
  #checkov:skip=CKV_AWS_145:SSE-S3 rather than KMS (see the encryption resource): a KMS request per PUT and GET, and KMS grants for every node, buy nothing for packets that are deleted on delivery.
  #checkov:skip=CKV2_AWS_62:S3 event notifications arrive in seconds, too late to wake a node; the senders ring the receiver's SQS doorbell themselves (doorbell.tf).
}

resource "aws_s3_bucket_public_access_block" "hoshino" {
  bucket = aws_s3_bucket.hoshino.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object, so access is decided by the policies below alone.
resource "aws_s3_bucket_ownership_controls" "hoshino" {
  bucket = aws_s3_bucket.hoshino.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-S3: encrypted at rest at no cost and with no key permission for the nodes to hold. SSE-KMS
# would add a KMS request to every PUT and GET (or per data key with bucket keys) and kms:Decrypt and
# kms:GenerateDataKey for every node, and any node allowed to GET could still decrypt: it protects
# against no one the IAM policies do not already stop. Sealing packets end to end is the agent's job.
resource "aws_s3_bucket_server_side_encryption_configuration" "hoshino" {
  bucket = aws_s3_bucket.hoshino.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Off, and said so: a versioned bucket would keep every delivered packet.
resource "aws_s3_bucket_versioning" "hoshino" {
  bucket = aws_s3_bucket.hoshino.id

  versioning_configuration {
    status = "Disabled"
  }
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

    # The agent never uploads in parts; any upload left half done is not a packet's.
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Packets travel only over TLS, whatever an identity's own policy says.
data "aws_iam_policy_document" "bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.hoshino.arn,
      "${aws_s3_bucket.hoshino.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "hoshino" {
  bucket = aws_s3_bucket.hoshino.id
  policy = data.aws_iam_policy_document.bucket.json

  # S3 refuses concurrent changes to one bucket's policy and public access block (OperationAborted).
  depends_on = [aws_s3_bucket_public_access_block.hoshino]
}
