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

output "exit_node_security_group_id" {
  description = "The security group to give the exit node's instance (null without vpc_id)."
  value       = try(aws_security_group.exit_node["exit"].id, null)
}

output "s3_gateway_endpoint_id" {
  description = "The S3 gateway endpoint in the private subnets' route tables (null without vpc_id)."
  value       = try(aws_vpc_endpoint.s3["exit"].id, null)
}

output "s3_prefix_list_id" {
  description = "S3's prefix list: for the private machines' own security groups, whose HTTPS to S3 stays inside the VPC (null without vpc_id)."
  value       = try(aws_vpc_endpoint.s3["exit"].prefix_list_id, null)
}
