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

output "doorbells" {
  description = "Each node's doorbell queue URL."
  value       = { for name, queue in aws_sqs_queue.doorbell : name => queue.url }
}
