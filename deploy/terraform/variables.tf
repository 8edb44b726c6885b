variable "bucket_name" {
  description = "Name of the bucket that carries the packets."
  type        = string
}

variable "nodes" {
  description = <<-EOT
    Each node's name (its IAM user is hoshino-NAME) and its IPv6 address, in RFC 5952 compressed form
    as hoshino-agent prints it at start (e.g. fd5e:59b8:f71d:9a3e::b): its inbox is that address.
  EOT
  type        = map(string)

  validation {
    condition     = alltrue([for name in keys(var.nodes) : can(regex("^[A-Za-z0-9+=,.@_-]{1,56}$", name))])
    error_message = "A node name must be 1 to 56 of A-Z a-z 0-9 + = , . @ _ - (IAM user names, less the hoshino- prefix)."
  }

  # The inbox in every key and policy is the address's compressed text: a differently written address
  # would give a node a policy for an inbox nobody writes to. cidrhost prints RFC 5952 text.
  validation {
    condition = alltrue([
      for address in values(var.nodes) : try(cidrhost("${address}/128", 0) == address, false)
    ])
    error_message = "Each address must be an IPv6 address in RFC 5952 compressed form, e.g. fd5e:59b8:f71d:9a3e::b (as hoshino-agent prints it)."
  }
}

variable "key_prefix" {
  description = "The nodes' --key-prefix, when several networks share the bucket (default: none)."
  type        = string
  default     = ""

  # The prefix lands inside policy ARNs, where * and ? are wildcards and $ starts a policy variable,
  # and inside JSON strings: only S3's safe characters that mean nothing there are let through.
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()/-]*$", var.key_prefix))
    error_message = "The key prefix may hold only A-Z a-z 0-9 ! _ . ' ( ) / -."
  }

  # hoshino-agent adds a missing trailing / to its --key-prefix: without it, net1* would also grant net10...
  validation {
    condition     = can(regex("^$|/$", var.key_prefix))
    error_message = "The key prefix must end in / (e.g. net1/), as hoshino-agent uses it: without it, net1* would also grant net10's objects."
  }
}
