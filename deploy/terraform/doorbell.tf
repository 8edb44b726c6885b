# One SQS queue per node: a sender rings the receiver's doorbell after its PUT, and the receiver's
# long poll wakes at once instead of listing its inbox on a timer. A ring is only a hint (the inbox
# is the truth), so it need not live long.

locals {
  # hoshino- + P + A: A is the address with every ':' as '-'; P is empty without a key prefix, else
  # the prefix without its trailing '/', every character outside [A-Za-z0-9_-] as '_', then '-'.
  # The agent names its queue the same way (deploy/node_policy.py is the Python twin of this rule).
  queue_name_prefix = var.key_prefix == "" ? "hoshino-" : "hoshino-${replace(replace(var.key_prefix, "/\\/+$/", ""), "/[^A-Za-z0-9_-]/", "_")}-"
  queue_names       = { for name, address in var.nodes : name => "${local.queue_name_prefix}${replace(address, ":", "-")}" }
}

resource "aws_sqs_queue" "doorbell" {
  for_each = var.nodes
  name     = local.queue_names[each.key]

  # SQS's shortest retention: a ring nobody answered within a minute has been overtaken by the
  # receiver's own polls.
  message_retention_seconds = 60
  # Receivers long-poll for the longest SQS allows, so an idle node costs 3 requests a minute.
  receive_wait_time_seconds = 20
  sqs_managed_sse_enabled   = true

  lifecycle {
    precondition {
      condition     = length(local.queue_names[each.key]) <= 80
      error_message = "Queue name ${local.queue_names[each.key]} is over SQS's 80 characters: shorten the key prefix."
    }
  }
}
